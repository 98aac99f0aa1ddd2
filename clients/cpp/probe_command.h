#pragma once
// `ctxmem probe`: memory probing (spec §9) of one or more pruners on a text file. Writes
// DIR/probe.json and draws DIR/*.png with tools/plot_probe.py (forgetting curves of every
// pruner on one figure, per-layer retention heatmaps). If plotting fails the JSON stays.

#include <cstdint>
#include <string>

#include "CLI/CLI.hpp"
#include "clients/cpp/eval_flags.h"
#include "clients/cpp/model_flags.h"

namespace ctxmem::cli {

struct ProbeArgs {
  ModelFlags model;
  CompressionFlags compression;
  std::string text_path;
  std::string pruners = "streaming_llm";  // comma-separated
  std::string memory_type = "FM";
  int64_t chunk_size = 512;
  int64_t memory_size = 256;
  int64_t max_tokens = 2048;  // 0 = the whole text
  bool no_usage = false;      // skip §9 MemoryUsage (saves a score pass per chunk)
  std::string out_dir;
  std::string python = "python3";  // $CTXMEM_PYTHON when set
  bool no_plot = false;
};

// Adds the `probe` subcommand to `app`; `args` must outlive the parse.
CLI::App* AddProbeCommand(CLI::App* app, ProbeArgs* args);

// Runs it; returns the process exit code (0, or 1 after printing the error to stderr).
int RunProbe(const ProbeArgs& args);

}  // namespace ctxmem::cli
