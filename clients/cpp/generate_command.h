#pragma once
// `ctxmem generate`: loads a model, optionally wraps the prompt in the model's chat template,
// streams the generated text to stdout and prints timing stats to stderr.

#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "clients/cpp/model_flags.h"

namespace ctxmem::cli {

struct GenerateArgs {
  ModelFlags model;
  std::string prompt;
  bool chat = false;   // render the prompt with the model's chat template
  std::string system;  // system message for --chat (empty = the template's default)
  int64_t max_tokens = 256;
  float temperature = 0.0f;
  int32_t top_k = 0;
  float top_p = 1.0f;
  float repetition_penalty = 1.0f;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  int64_t max_context = 0;  // 0 = the model's max_positions
};

// Adds the `generate` subcommand to `app`; `args` must outlive the parse.
CLI::App* AddGenerateCommand(CLI::App* app, GenerateArgs* args);

// Runs it; returns the process exit code (0, or 1 after printing the error to stderr).
int RunGenerate(const GenerateArgs& args);

}  // namespace ctxmem::cli
