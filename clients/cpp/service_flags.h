#pragma once
// Flags every `ctxmem` verb that talks to a server shares (address, bearer token, TLS, deadline),
// the channel and ClientContext made from them, and how an RPC failure is reported.
// Thread-safety: plain functions; call from the main thread.

#include <absl/status/statusor.h>
#include <google/protobuf/message.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <chrono>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"

namespace ctxmem::cli {

inline constexpr char kDefaultCompressorAddress[] = "127.0.0.1:50051";
inline constexpr char kDefaultDecoderAddress[] = "127.0.0.1:50052";

struct ServiceFlags {
  std::string address;          // "host:port" of the server
  std::string token;            // bearer token; "" = none (or from token_file)
  std::string token_file;       // file holding the token (first non-blank, non-# line, first word)
  bool tls = false;             // TLS channel (implied by any of the files below)
  std::string tls_ca;           // PEM roots; "" = system roots
  std::string tls_cert;         // client certificate for mTLS
  std::string tls_key;          // its key
  std::string tls_server_name;  // name checked against the server certificate; "" = host
  double timeout_seconds = 0;   // per-RPC deadline; 0 = none
};

// Registers --<service> ADDR (env CTXMEM_<SERVICE>, default `default_address`), --token
// (env CTXMEM_TOKEN), --token-file (env CTXMEM_TOKEN_FILE), --tls, --tls-ca, --tls-cert,
// --tls-key, --tls-server-name and --timeout on `cmd`. `flags` must outlive the parse.
void AddServiceFlags(CLI::App* cmd, const std::string& service, const std::string& default_address,
                     double default_timeout_seconds, ServiceFlags* flags);

// A channel to flags.address (plaintext unless TLS was asked for). InvalidArgument for an empty
// address or inconsistent TLS files; NotFound naming an unreadable PEM file.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ServiceFlags& flags);

// The bearer token: --token, else the first word of the first non-blank, non-# line of
// --token-file, else "" (no authorization metadata). NotFound / InvalidArgument naming the
// token file when it cannot be read or holds no token.
absl::StatusOr<std::string> ResolveToken(const ServiceFlags& flags);

// Adds "authorization: Bearer <token>" (when there is a token) and the deadline to `context`.
absl::Status PrepareContext(const ServiceFlags& flags, grpc::ClientContext* context);

// Prints "ctxmem <command>: error: <CODE>: <message>" to stderr and returns the exit code 1.
int ReportRpcError(const std::string& command, const grpc::Status& status);

// The same for a local failure (bad flags, unreadable file): its absl code names the CODE.
int ReportServiceError(const std::string& command, const absl::Status& status);

// `message` as one line of JSON (proto field names, defaults included).
std::string ToJson(const google::protobuf::Message& message);

}  // namespace ctxmem::cli
