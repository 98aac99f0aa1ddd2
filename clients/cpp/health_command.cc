#include "clients/cpp/health_command.h"

#include <absl/strings/str_cat.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>

#include <cstdio>
#include <vector>

namespace ctxmem::cli {
namespace {

constexpr char kCheckMethod[] = "/grpc.health.v1.Health/Check";

// grpc.health.v1 messages are tiny and stable, so they are encoded by hand rather than
// generating health.proto: HealthCheckRequest{1: string service},
// HealthCheckResponse{1: enum ServingStatus status} (0 UNKNOWN, 1 SERVING, 2 NOT_SERVING,
// 3 SERVICE_UNKNOWN).
std::string EncodeRequest(const std::string& service) {
  std::string out;
  if (service.empty()) return out;
  out.push_back(0x0a);  // field 1, length-delimited
  size_t n = service.size();
  while (n >= 0x80) {
    out.push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  out.push_back(static_cast<char>(n));
  return out + service;
}

// The status field of a HealthCheckResponse; 0 (UNKNOWN) when absent or malformed.
int DecodeStatus(const std::string& bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    uint8_t key = static_cast<uint8_t>(bytes[i++]);
    uint64_t value = 0;
    if ((key & 7) == 0) {  // varint
      int shift = 0;
      while (i < bytes.size() && shift < 64) {
        uint8_t b = static_cast<uint8_t>(bytes[i++]);
        value |= static_cast<uint64_t>(b & 0x7f) << shift;
        shift += 7;
        if ((b & 0x80) == 0) break;
      }
      if ((key >> 3) == 1) return static_cast<int>(value);
    } else {
      return 0;  // the response has only field 1
    }
  }
  return 0;
}

const char* ServingStatusName(int status) {
  switch (status) {
    case 1:
      return "SERVING";
    case 2:
      return "NOT_SERVING";
    case 3:
      return "SERVICE_UNKNOWN";
    default:
      return "UNKNOWN";
  }
}

}  // namespace

CLI::App* AddHealthCommand(CLI::App* app, HealthArgs* args) {
  CLI::App* cmd = app->add_subcommand("health", "Check a server's grpc.health.v1 status");
  cmd->add_option("--service-name", args->service_name, "health service name (\"\" = server)");
  cmd->add_flag("-q,--quiet", args->quiet, "print nothing; the exit code says it");
  AddServiceFlags(cmd, "server", kDefaultCompressorAddress, 5, &args->service);
  return cmd;
}

int RunHealth(const HealthArgs& args) {
  auto channel = MakeChannel(args.service);
  if (!channel.ok()) return ReportServiceError("health", channel.status());
  grpc::ClientContext context;
  if (absl::Status s = PrepareContext(args.service, &context); !s.ok()) {
    return ReportServiceError("health", s);
  }
  std::string request_bytes = EncodeRequest(args.service_name);
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::GenericStub stub(*channel);
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
      stub.PrepareUnaryCall(&context, kCheckMethod, request, &cq);
  call->StartCall();
  grpc::Status status;
  int tag = 1;
  call->Finish(&response, &status, &tag);
  void* got_tag = nullptr;
  bool ok = false;
  cq.Next(&got_tag, &ok);
  cq.Shutdown();
  while (cq.Next(&got_tag, &ok)) {
  }
  if (!status.ok()) {
    if (args.quiet) return 1;
    return ReportRpcError("health", status);
  }
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  int serving = DecodeStatus(bytes);
  if (!args.quiet) std::printf("%s %s\n", args.service.address.c_str(), ServingStatusName(serving));
  return serving == 1 ? 0 : 1;
}

}  // namespace ctxmem::cli
