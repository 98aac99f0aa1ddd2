#include "clients/cpp/service_flags.h"

#include <absl/strings/str_cat.h>
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/service/grpc_status.h"
#include "common/service/metrics_endpoint.h"
#include "common/service/tls_credentials.h"
#include "common/status.h"

namespace ctxmem::cli {
namespace {

// Largest message the CLI accepts from a server: GetMemory pieces are <= 1 MiB, everything else
// is small; generous so a server with a raised limit still works.
constexpr int kMaxReceiveBytes = 64 << 20;

}  // namespace

void AddServiceFlags(CLI::App* cmd, const std::string& service, const std::string& default_address,
                     double default_timeout_seconds, ServiceFlags* flags) {
  flags->address = default_address;
  flags->timeout_seconds = default_timeout_seconds;
  std::string upper = service;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  cmd->add_option("--" + service, flags->address, service + " service address host:port")
      ->envname("CTXMEM_" + upper)
      ->capture_default_str();
  cmd->add_option("--token", flags->token, "bearer token (when the server has a tokens file)")
      ->envname("CTXMEM_TOKEN");
  cmd->add_option("--token-file", flags->token_file, "file holding the bearer token")
      ->envname("CTXMEM_TOKEN_FILE");
  cmd->add_flag("--tls", flags->tls, "use TLS (system roots unless --tls-ca)");
  cmd->add_option("--tls-ca", flags->tls_ca, "PEM CA bundle to verify the server (implies --tls)");
  cmd->add_option("--tls-cert", flags->tls_cert, "PEM client certificate for mTLS");
  cmd->add_option("--tls-key", flags->tls_key, "PEM key of --tls-cert");
  cmd->add_option("--tls-server-name", flags->tls_server_name,
                  "name to verify in the server certificate (default: the host)");
  cmd->add_option("--timeout", flags->timeout_seconds, "per-call deadline in seconds (0 = none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ServiceFlags& flags) {
  if (flags.address.empty()) {
    return absl::InvalidArgumentError("empty server address: pass host:port");
  }
  service::ClientTlsOptions tls;
  tls.enabled = flags.tls || !flags.tls_ca.empty() || !flags.tls_cert.empty() ||
                !flags.tls_key.empty() || !flags.tls_server_name.empty();
  tls.ca_file = flags.tls_ca;
  tls.cert_file = flags.tls_cert;
  tls.key_file = flags.tls_key;
  tls.server_name = flags.tls_server_name;
  return service::MakeClientChannel(flags.address, tls, kMaxReceiveBytes);
}

absl::StatusOr<std::string> ResolveToken(const ServiceFlags& flags) {
  if (!flags.token.empty()) return flags.token;
  if (flags.token_file.empty()) return std::string();
  std::ifstream in(flags.token_file);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read token file ", flags.token_file));
  }
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string token;
    if (!(words >> token) || token[0] == '#') continue;
    return token;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("token file ", flags.token_file, " holds no token (want one line: <token>)"));
}

absl::Status PrepareContext(const ServiceFlags& flags, grpc::ClientContext* context) {
  CTXMEM_ASSIGN_OR_RETURN(std::string token, ResolveToken(flags));
  if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
  if (flags.timeout_seconds > 0) {
    context->set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::microseconds(static_cast<int64_t>(flags.timeout_seconds * 1e6)));
  }
  return absl::OkStatus();
}

int ReportRpcError(const std::string& command, const grpc::Status& status) {
  std::fflush(stdout);
  std::fprintf(stderr, "ctxmem %s: error: %s: %s\n", command.c_str(),
               std::string(service::StatusCodeName(status.error_code())).c_str(),
               status.error_message().c_str());
  return 1;
}

int ReportServiceError(const std::string& command, const absl::Status& status) {
  return ReportRpcError(command, service::ToGrpcStatus(status));
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

}  // namespace ctxmem::cli
