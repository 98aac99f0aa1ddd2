#pragma once
// TLS for both servers and their clients: server credentials from PEM files (TLS when a
// cert and key are given; mutual TLS, client certificates required and verified, when a CA is
// also given), and channel credentials for clients (the decoder's fetcher, the CLI).
// Thread-safety: free functions.

#include <absl/status/statusor.h>
#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

namespace ctxmem::service {

struct ServerTlsOptions {
  std::string cert_file;       // PEM server certificate chain; "" = plaintext
  std::string key_file;        // PEM private key; required with cert_file
  std::string client_ca_file;  // PEM CA bundle; set = mTLS (client certs required)

  bool enabled() const { return !cert_file.empty(); }
};

struct ClientTlsOptions {
  bool enabled = false;     // false = plaintext channel
  std::string ca_file;      // PEM roots; "" = the system roots
  std::string cert_file;    // client certificate for mTLS; "" = none
  std::string key_file;     // its key; required with cert_file
  std::string server_name;  // overrides the name checked against the server cert; "" = host
};

// InvalidArgument when cert/key are given alone or a CA without a cert; NotFound naming the
// file that cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsOptions& options);
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ClientTlsOptions& options);

// A channel to `target` ("host:port") with these credentials, ssl target-name override and
// `max_receive_bytes` as the largest message it accepts (0 = gRPC's default).
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeClientChannel(const std::string& target,
                                                                 const ClientTlsOptions& options,
                                                                 int max_receive_bytes = 0);

// The whole file as a string. NotFound / Internal naming the path.
absl::StatusOr<std::string> ReadPemFile(const std::string& path);

}  // namespace ctxmem::service
