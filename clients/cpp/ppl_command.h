#pragma once
// `ctxmem ppl`: perplexity of a model on a text file (non-overlapping windows, see
// common/model/perplexity.h), with a progress line per window on stderr.

#include <cstdint>
#include <string>

#include "CLI/CLI.hpp"
#include "clients/cpp/model_flags.h"

namespace ctxmem::cli {

struct PplArgs {
  ModelFlags model;
  std::string text_path;
  int64_t ctx = 1024;      // window length, tokens
  int64_t max_tokens = 0;  // 0 = the whole text
};

// Adds the `ppl` subcommand to `app`; `args` must outlive the parse.
CLI::App* AddPplCommand(CLI::App* app, PplArgs* args);

// Runs it; returns the process exit code (0, or 1 after printing the error to stderr).
int RunPpl(const PplArgs& args);

}  // namespace ctxmem::cli
