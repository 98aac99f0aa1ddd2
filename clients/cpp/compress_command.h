#pragma once
// `ctxmem compress FILE`: streams a text file (or stdin with "-") to the compressor's Compress
// RPC in pieces, draws a progress bar on stderr from the progress events, and prints the sealed
// memory's id and description (JSON with --json, the id alone with --quiet).

#include <cstdint>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "clients/cpp/service_flags.h"

namespace ctxmem::cli {

struct CompressArgs {
  ServiceFlags service;
  std::string file;  // "-" = stdin
  // CompressionConfig fields; unset = the server's default (see proto/ctxmem/v1/memory.proto).
  std::string pruner;
  std::string memory_type;
  std::optional<int64_t> memory_size;
  int64_t chunk_size = 0;
  std::string schedule;
  std::optional<int64_t> n_sink_tokens;
  std::string position_mode;
  std::string score_mode;
  int64_t score_window = 0;
  int64_t conv_kernel_size = 0;
  int64_t double_compress_size = 0;
  uint64_t seed = 0;
  std::string kv_dtype;
  int64_t kv_group_size = 0;   // 0 = the server's default (int8/int4 only)
  std::string base_memory_id;  // "" = compress from nothing; else append to this memory
  std::string model_name;
  std::string label;  // client label kept with the memory (<= 256 bytes)
  bool add_bos = false;
  int64_t expected_tokens = 0;  // 0 = unknown
  bool json = false;            // print CompressDone as JSON (progress still on stderr)
  bool quiet = false;           // no progress; print only the memory id
};

// Adds the `compress` subcommand to `app`; `args` must outlive the parse.
CLI::App* AddCompressCommand(CLI::App* app, CompressArgs* args);

// Runs it; returns the process exit code (0, or 1 after printing the error to stderr).
int RunCompress(const CompressArgs& args);

}  // namespace ctxmem::cli
