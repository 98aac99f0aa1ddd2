#include "clients/cpp/ls_command.h"

#include <cstdio>
#include <string>

#include "clients/cpp/stat_command.h"
#include "ctxmem/v1/compressor.grpc.pb.h"

namespace ctxmem::cli {
namespace {

// Memories asked for per ListMemories page.
constexpr int32_t kPageSize = 200;

}  // namespace

CLI::App* AddLsCommand(CLI::App* app, LsArgs* args) {
  CLI::App* cmd = app->add_subcommand("ls", "List your memories on the compressor");
  cmd->add_option("--limit", args->limit, "show at most this many (0 = all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", args->json, "print a JSON array of MemoryInfo");
  AddServiceFlags(cmd, "compressor", kDefaultCompressorAddress, 30, &args->service);
  return cmd;
}

int RunLs(const LsArgs& args) {
  auto channel = MakeChannel(args.service);
  if (!channel.ok()) return ReportServiceError("ls", channel.status());
  auto stub = v1::Compressor::NewStub(*channel);
  std::string page_token;
  int64_t shown = 0;
  bool first = true;
  if (args.json) std::printf("[");
  do {
    grpc::ClientContext context;
    if (absl::Status s = PrepareContext(args.service, &context); !s.ok()) {
      return ReportServiceError("ls", s);
    }
    v1::ListMemoriesRequest request;
    request.set_page_size(kPageSize);
    request.set_page_token(page_token);
    v1::ListMemoriesResponse response;
    grpc::Status status = stub->ListMemories(&context, request, &response);
    if (!status.ok()) {
      if (args.json) std::printf("]\n");
      return ReportRpcError("ls", status);
    }
    for (const v1::MemoryInfo& info : response.memories()) {
      if (args.limit > 0 && shown >= args.limit) break;
      if (args.json) {
        std::printf("%s%s", first ? "\n  " : ",\n  ", ToJson(info).c_str());
      } else {
        if (first) {
          std::printf("%-64s %9s %8s %10s %10s  %s\n", "MEMORY_ID", "TOKENS", "RATIO", "BLOB",
                      "KEPT/L0", "LABEL");
        }
        std::printf("%-64s %9lld %7.2fx %10s %10lld  %s\n", info.memory_id().c_str(),
                    static_cast<long long>(info.n_original_tokens()), info.compression_ratio(),
                    HumanBytes(info.blob_bytes()).c_str(),
                    static_cast<long long>(info.n_kept_size() > 0 ? info.n_kept(0) : 0),
                    info.client_label().c_str());
      }
      first = false;
      ++shown;
    }
    page_token = response.next_page_token();
  } while (!page_token.empty() && (args.limit == 0 || shown < args.limit));
  if (args.json) std::printf("%s]\n", first ? "" : "\n");
  if (!args.json && first) std::fprintf(stderr, "no memories\n");
  return 0;
}

}  // namespace ctxmem::cli
