#pragma once
// `ctxmem eval-passkey`: passkey retrieval through compression (common/eval/passkey_task.h)
// for every length x depth and each pruner given; writes DIR/NAME.json and DIR/NAME.md and
// draws DIR/NAME.png (accuracy heatmaps, length x depth) with tools/plot_passkey.py.

#include <cstdint>
#include <string>

#include "CLI/CLI.hpp"
#include "clients/cpp/eval_flags.h"
#include "clients/cpp/model_flags.h"

namespace ctxmem::cli {

struct EvalPasskeyArgs {
  ModelFlags model;
  CompressionFlags compression;
  std::string lengths = "1k,2k,4k";
  std::string depths = "0,0.25,0.5,0.75,1";
  std::string pruners = "conv";  // comma-separated; each gets its own table and heatmap
  std::string memory_type = "FM";
  int64_t chunk_size = 512;
  int64_t memory_size = 256;
  int64_t n_trials = 1;
  int64_t max_new_tokens = 12;
  uint64_t key_seed = 0;
  std::string out_dir;
  std::string name = "passkey";
  std::string python = "python3";  // $CTXMEM_PYTHON when set
  bool no_plot = false;
};

// Adds the `eval-passkey` subcommand to `app`; `args` must outlive the parse.
CLI::App* AddEvalPasskeyCommand(CLI::App* app, EvalPasskeyArgs* args);

// Runs it; returns the process exit code (0, or 1 after printing the error to stderr).
int RunEvalPasskey(const EvalPasskeyArgs& args);

}  // namespace ctxmem::cli
