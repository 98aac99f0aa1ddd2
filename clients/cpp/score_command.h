#pragma once
// `ctxmem score`: the library's twin of the decoder's Score RPC. Compresses a context file with
// one configuration in this process (compress::Compress) and prints, as one JSON line, the
// log-likelihood of a continuation file read after that memory (compress::ScoreContinuation):
// {"n_scored", "total_nll", "perplexity", "memory_len"}. The integration tests compare the
// services' Score with it.

#include <cstdint>
#include <string>

#include "CLI/CLI.hpp"
#include "clients/cpp/eval_flags.h"
#include "clients/cpp/model_flags.h"

namespace ctxmem::cli {

struct ScoreArgs {
  ModelFlags model;
  CompressionFlags compression;
  std::string context;       // text file compressed into the memory
  std::string continuation;  // text file scored after it
  std::string pruner = "streaming_llm";
  int64_t chunk_size = 512;
  int64_t memory_size = 256;
  std::string rcc_bridge = "stride";
  int64_t rcc_window = 512;
  int64_t rcc_rate = 16;
};

// Adds the `score` subcommand to `app`; `args` must outlive the parse.
CLI::App* AddScoreCommand(CLI::App* app, ScoreArgs* args);

// Runs it; returns the process exit code (0, or 1 after printing the error to stderr).
int RunScore(const ScoreArgs& args);

}  // namespace ctxmem::cli
