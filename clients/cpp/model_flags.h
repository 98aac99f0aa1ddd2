#pragma once
// Flags every `ctxmem` subcommand that loads a model shares (--model, --device, --dtype,
// --threads), and the one place that turns them into a loaded Model.
// Thread-safety: plain functions; call from the main thread.

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "common/model/model.h"

namespace ctxmem::cli {

struct ModelFlags {
  std::string path;  // GGUF file or HF checkpoint folder; $CTXMEM_MODEL when not given
  std::string device = "cpu";
  std::string dtype = "fp32";
  int n_threads = 0;  // 0 = torch's default
};

// Registers the flags on `cmd`; `flags` must outlive the parse.
void AddModelFlags(CLI::App* cmd, ModelFlags* flags);

// InvalidArgument when no model was named; otherwise whatever Model::Load returns.
absl::StatusOr<std::unique_ptr<model::Model>> LoadModel(const ModelFlags& flags);

// Prints "ctxmem <command>: error: <message>" to stderr and returns the exit code 1.
int ReportError(const std::string& command, const absl::Status& status);

}  // namespace ctxmem::cli
