#include "common/service/tls_credentials.h"

#include <absl/strings/str_cat.h>
#include <grpcpp/create_channel.h>

#include <fstream>
#include <sstream>

#include "common/status.h"

namespace ctxmem::service {

absl::StatusOr<std::string> ReadPemFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open PEM file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::InternalError(absl::StrCat("cannot read PEM file ", path));
  if (buffer.str().find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a PEM file (no -----BEGIN)"));
  }
  return buffer.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsOptions& options) {
  if (!options.enabled()) {
    if (!options.key_file.empty() || !options.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls-key / --tls-client-ca need --tls-cert (the server certificate)");
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert needs --tls-key (the certificate's private key)");
  }
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  CTXMEM_ASSIGN_OR_RETURN(pair.cert_chain, ReadPemFile(options.cert_file));
  CTXMEM_ASSIGN_OR_RETURN(pair.private_key, ReadPemFile(options.key_file));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.client_ca_file.empty()) {
    CTXMEM_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPemFile(options.client_ca_file));
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ClientTlsOptions& options) {
  if (!options.enabled) return grpc::InsecureChannelCredentials();
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError("a client certificate and its key go together");
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.ca_file.empty()) {
    CTXMEM_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPemFile(options.ca_file));
  }
  if (!options.cert_file.empty()) {
    CTXMEM_ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadPemFile(options.cert_file));
    CTXMEM_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPemFile(options.key_file));
  }
  return grpc::SslCredentials(ssl);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeClientChannel(const std::string& target,
                                                                 const ClientTlsOptions& options,
                                                                 int max_receive_bytes) {
  CTXMEM_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                          MakeChannelCredentials(options));
  grpc::ChannelArguments args;
  if (max_receive_bytes > 0) args.SetMaxReceiveMessageSize(max_receive_bytes);
  if (options.enabled && !options.server_name.empty()) {
    args.SetSslTargetNameOverride(options.server_name);
  }
  return grpc::CreateCustomChannel(target, credentials, args);
}

}  // namespace ctxmem::service
