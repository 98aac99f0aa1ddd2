#pragma once
// `ctxmem rm MEMORY_ID...`: DeleteMemory on the compressor for each id; stops at the first error.

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "clients/cpp/service_flags.h"

namespace ctxmem::cli {

struct RmArgs {
  ServiceFlags service;
  std::vector<std::string> memory_ids;
};

// Adds the `rm` subcommand to `app`; `args` must outlive the parse.
CLI::App* AddRmCommand(CLI::App* app, RmArgs* args);

// Runs it; returns the process exit code (0, or 1 after printing the error to stderr).
int RunRm(const RmArgs& args);

}  // namespace ctxmem::cli
