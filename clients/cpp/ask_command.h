#pragma once
// `ctxmem ask MEMORY_ID "question"`: Generate on the decoder service with the memory as past;
// streams the answer to stdout and prints usage and timings (TTFT, fetch, cache hit) to stderr,
// or the final GenerateDone as JSON with --json.

#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "clients/cpp/service_flags.h"

namespace ctxmem::cli {

struct AskArgs {
  ServiceFlags service;
  std::string memory_ids;  // one id, or several separated by commas (read in order)
  std::string question;
  bool chat = false;   // send as a chat message (model's chat template)
  std::string system;  // system message with --chat
  int32_t max_tokens = 256;
  float temperature = 0.0f;
  float top_p = 1.0f;
  int32_t top_k = 0;
  float repetition_penalty = 1.0f;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool json = false;
};

// Adds the `ask` subcommand to `app`; `args` must outlive the parse.
CLI::App* AddAskCommand(CLI::App* app, AskArgs* args);

// Runs it; returns the process exit code (0, or 1 after printing the error to stderr).
int RunAsk(const AskArgs& args);

}  // namespace ctxmem::cli
