#pragma once
// `ctxmem eval-recon`: how much of each window a memory keeps (common/eval/recon_eval.h), RCC
// against the pruners at the same entries; writes DIR/eval_recon.{json,md} and draws
// DIR/eval_recon.png with tools/plot_recon.py.

#include <cstdint>
#include <string>

#include "CLI/CLI.hpp"
#include "clients/cpp/eval_flags.h"
#include "clients/cpp/model_flags.h"

namespace ctxmem::cli {

struct EvalReconArgs {
  ModelFlags model;
  CompressionFlags compression;
  std::string text;
  std::string methods = "rcc,streaming_llm,tova,conv";
  std::string rates = "8";  // comma-separated R values
  int64_t window = 512;
  std::string weights;  // a trained rcc bridge for "rcc" (default: the stride bridge)
  int64_t max_windows = 8;
  int64_t hint = 16;
  int64_t greedy_tokens = 128;
  int64_t continuation = 128;
  std::string out_dir;
  std::string python = "python3";  // $CTXMEM_PYTHON when set
  bool no_plot = false;
};

// Adds the `eval-recon` subcommand to `app`; `args` must outlive the parse.
CLI::App* AddEvalReconCommand(CLI::App* app, EvalReconArgs* args);

// Runs it; returns the process exit code (0, or 1 after printing the error to stderr).
int RunEvalRecon(const EvalReconArgs& args);

}  // namespace ctxmem::cli
