#include "clients/cpp/stat_command.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>

#include <algorithm>
#include <ctime>

#include "ctxmem/v1/compressor.grpc.pb.h"

namespace ctxmem::cli {

CLI::App* AddStatCommand(CLI::App* app, StatArgs* args) {
  CLI::App* cmd = app->add_subcommand("stat", "Describe one memory (StatMemory on the compressor)");
  cmd->add_option("memory_id", args->memory_id, "memory id (hex)")->required();
  cmd->add_flag("--json", args->json, "print the MemoryInfo as JSON");
  AddServiceFlags(cmd, "compressor", kDefaultCompressorAddress, 30, &args->service);
  return cmd;
}

int RunStat(const StatArgs& args) {
  auto channel = MakeChannel(args.service);
  if (!channel.ok()) return ReportServiceError("stat", channel.status());
  auto stub = v1::Compressor::NewStub(*channel);
  grpc::ClientContext context;
  if (absl::Status s = PrepareContext(args.service, &context); !s.ok()) {
    return ReportServiceError("stat", s);
  }
  v1::StatMemoryRequest request;
  request.set_memory_id(args.memory_id);
  v1::MemoryInfo info;
  grpc::Status status = stub->StatMemory(&context, request, &info);
  if (!status.ok()) return ReportRpcError("stat", status);
  if (args.json) {
    std::printf("%s\n", ToJson(info).c_str());
  } else {
    PrintMemoryInfo(info, stdout);
  }
  return 0;
}

std::string HumanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? absl::StrCat(bytes, " B") : absl::StrFormat("%.1f %s", value, units[unit]);
}

void PrintMemoryInfo(const v1::MemoryInfo& info, std::FILE* out) {
  std::string kept;
  if (info.n_kept_size() > 0) {
    auto [lo, hi] = std::minmax_element(info.n_kept().begin(), info.n_kept().end());
    kept = *lo == *hi
               ? absl::StrCat(*lo, " per kv head, all ", info.n_kept_size(), " layers")
               : absl::StrCat(*lo, "..", *hi, " per kv head over ", info.n_kept_size(), " layers");
  }
  char created[32] = "-";
  std::time_t seconds = static_cast<std::time_t>(info.created_unix_ms() / 1000);
  std::tm tm{};
  if (info.created_unix_ms() > 0 && gmtime_r(&seconds, &tm) != nullptr) {
    std::strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
  }
  std::fprintf(out, "memory_id          %s\n", info.memory_id().c_str());
  std::fprintf(out, "original_tokens    %lld\n", static_cast<long long>(info.n_original_tokens()));
  std::fprintf(out, "kept_entries       %s\n", kept.c_str());
  std::fprintf(out, "compression_ratio  %.2fx\n", info.compression_ratio());
  std::fprintf(out, "blob_bytes         %llu (%s)\n",
               static_cast<unsigned long long>(info.blob_bytes()),
               HumanBytes(info.blob_bytes()).c_str());
  std::fprintf(out, "bytes_per_token    %.1f\n", info.bytes_per_original_token());
  std::fprintf(out, "created            %s\n", created);
  if (!info.client_label().empty()) {
    std::fprintf(out, "label              %s\n", info.client_label().c_str());
  }
  std::fprintf(out, "format_version     %lld\n", static_cast<long long>(info.format_version()));
  std::fprintf(out, "model              %s\n", info.model_fingerprint().c_str());
  std::fprintf(out, "tokenizer          %s\n", info.tokenizer_fingerprint().c_str());
  std::fprintf(out, "config             %s\n", info.compression_config_json().c_str());
}

}  // namespace ctxmem::cli
