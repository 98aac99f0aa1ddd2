#pragma once
// BenchInput: what the model benchmarks of bench/ (compress_bench, kv_quant_bench,
// append_bench) start from — their flags (BenchFlags: "--name value" pairs into typed fields),
// the bundled model loaded with its options and the token ids of a text, checked to be long
// enough — plus the CPU clock they all report (user + system seconds: on a shared machine the
// figure to compare, as wall time also counts other processes' turns on the cores).
// Thread-safety: BenchFlags is not thread-safe; the free functions are.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/compress/compression_config.h"
#include "common/model/model.h"

namespace ctxmem::bench {

// $CTXMEM_MODEL, else the model scripts/setup.sh installs under ~/.cache/ctxmem.
std::string DefaultModelPath();

// User + system CPU seconds of this process so far (all threads).
double CpuSeconds();

// "--name value" flags into the fields they were added with (the fields must outlive Parse).
class BenchFlags {
 public:
  void Add(const std::string& flag, std::string* field);
  void Add(const std::string& flag, int64_t* field);
  void Add(const std::string& flag, int* field);
  // False with *error naming the flag: unknown, without a value, or not a number.
  bool Parse(int argc, char** argv, std::string* error) const;

 private:
  std::map<std::string, std::function<void(const std::string&)>> setters_;  // may throw
};

struct BenchInput {
  std::unique_ptr<model::Model> model;
  std::vector<int32_t> tokens;  // the whole text's ids
};

// Loads `model_path` with `options` and tokenizes the file `text_path`. NotFound for an
// unreadable text, InvalidArgument when it has fewer than `min_tokens` tokens; model and
// tokenizer errors as they come.
absl::StatusOr<BenchInput> LoadBenchInput(const std::string& model_path,
                                          const model::ModelOptions& options,
                                          const std::string& text_path, int64_t min_tokens);

// The CompressionConfig of a benchmark setting (not validated: the caller decides when);
// InvalidArgument for an unknown memory type name (compress::ParseMemoryType).
absl::StatusOr<compress::CompressionConfig> BenchConfig(const std::string& pruner,
                                                        const std::string& memory_type,
                                                        int64_t chunk, int64_t memory);

}  // namespace ctxmem::bench
