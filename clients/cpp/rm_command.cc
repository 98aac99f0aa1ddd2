#include "clients/cpp/rm_command.h"

#include <cstdio>

#include "ctxmem/v1/compressor.grpc.pb.h"

namespace ctxmem::cli {

CLI::App* AddRmCommand(CLI::App* app, RmArgs* args) {
  CLI::App* cmd = app->add_subcommand("rm", "Delete memories from the compressor's store");
  cmd->add_option("memory_ids", args->memory_ids, "memory ids (hex)")->required();
  AddServiceFlags(cmd, "compressor", kDefaultCompressorAddress, 30, &args->service);
  return cmd;
}

int RunRm(const RmArgs& args) {
  auto channel = MakeChannel(args.service);
  if (!channel.ok()) return ReportServiceError("rm", channel.status());
  auto stub = v1::Compressor::NewStub(*channel);
  for (const std::string& id : args.memory_ids) {
    grpc::ClientContext context;
    if (absl::Status s = PrepareContext(args.service, &context); !s.ok()) {
      return ReportServiceError("rm", s);
    }
    v1::DeleteMemoryRequest request;
    request.set_memory_id(id);
    v1::DeleteMemoryResponse response;
    grpc::Status status = stub->DeleteMemory(&context, request, &response);
    if (!status.ok()) return ReportRpcError("rm", status);
    std::printf("deleted %s\n", id.c_str());
  }
  return 0;
}

}  // namespace ctxmem::cli
