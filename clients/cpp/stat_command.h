#pragma once
// `ctxmem stat MEMORY_ID`: StatMemory on the compressor; prints the memory's description (or
// JSON with --json). Also the shared human-readable MemoryInfo printer (compress uses it).

#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "clients/cpp/service_flags.h"
#include "ctxmem/v1/memory.pb.h"

namespace ctxmem::cli {

struct StatArgs {
  ServiceFlags service;
  std::string memory_id;
  bool json = false;
};

// Adds the `stat` subcommand to `app`; `args` must outlive the parse.
CLI::App* AddStatCommand(CLI::App* app, StatArgs* args);

// Runs it; returns the process exit code (0, or 1 after printing the error to stderr).
int RunStat(const StatArgs& args);

// "key  value" lines: id, tokens, kept entries, blob size, bytes/token, ratio, config, ...
void PrintMemoryInfo(const v1::MemoryInfo& info, std::FILE* out);

// "12.3 MiB"-style size.
std::string HumanBytes(uint64_t bytes);

}  // namespace ctxmem::cli
