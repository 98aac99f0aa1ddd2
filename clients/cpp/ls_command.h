#pragma once
// `ctxmem ls`: the caller's memories on the compressor (ListMemories, every page), one line each,
// or a JSON array with --json.

#include <cstdint>

#include "CLI/CLI.hpp"
#include "clients/cpp/service_flags.h"

namespace ctxmem::cli {

struct LsArgs {
  ServiceFlags service;
  int64_t limit = 0;  // stop after this many memories; 0 = all
  bool json = false;
};

// Adds the `ls` subcommand to `app`; `args` must outlive the parse.
CLI::App* AddLsCommand(CLI::App* app, LsArgs* args);

// Runs it; returns the process exit code (0, or 1 after printing the error to stderr).
int RunLs(const LsArgs& args);

}  // namespace ctxmem::cli
