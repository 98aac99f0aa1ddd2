#pragma once
// Helpers shared by the libFuzzer targets (tests/fuzz/targets/*_fuzzer.cc): a per-process
// scratch file for parsers that read files (mmap), the SmolLM2 tokenizer loaded once, and a
// check that aborts (a crash libFuzzer reports) when a property of the parsed result fails.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/tokenizer_spec.h"

namespace ctxmem::fuzz {

// Aborts with a message: a violated property is a bug, reported like a crash.
#define CTXMEM_FUZZ_CHECK(cond)                                                               \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "%s:%d: fuzz property violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

// A file of this process (in /dev/shm when there is one: no disk I/O) rewritten per input.
inline const std::string& ScratchPath(std::string_view suffix) {
  static const std::string path = [&] {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : std::getenv("TMPDIR");
    return std::string(dir != nullptr ? dir : "/tmp") + "/ctxmem_fuzz_" + std::to_string(getpid()) +
           std::string(suffix);
  }();
  return path;
}

inline const std::string& WriteScratch(std::string_view suffix, const uint8_t* data, size_t n) {
  const std::string& path = ScratchPath(suffix);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
  return path;
}

// Where tests/data is (compiled in; $CTXMEM_TEST_DATA_DIR overrides).
inline std::string TestDataDir() {
  const char* env = std::getenv("CTXMEM_TEST_DATA_DIR");
  return env != nullptr && *env != '\0' ? env : CTXMEM_TEST_DATA_DIR;
}

// The bundled model's tokenizer (tests/data/tokenizer/smollm2_tokenizer.json + config), loaded
// once; aborts if it does not load (the target cannot run without it).
inline const tokenizer::Tokenizer& SmolLm2Tokenizer() {
  static const tokenizer::Tokenizer* tok = [] {
    const std::string dir = TestDataDir() + "/tokenizer/";
    std::ifstream a(dir + "smollm2_tokenizer.json", std::ios::binary);
    std::ifstream b(dir + "tokenizer_config.json", std::ios::binary);
    std::string json((std::istreambuf_iterator<char>(a)), std::istreambuf_iterator<char>());
    std::string config((std::istreambuf_iterator<char>(b)), std::istreambuf_iterator<char>());
    auto spec = tokenizer::TokenizerSpecFromJsonText(json, config);
    if (!spec.ok()) {
      std::fprintf(stderr, "cannot load the tokenizer from %s: %s\n", dir.c_str(),
                   spec.status().ToString().c_str());
      std::abort();
    }
    auto t = tokenizer::Tokenizer::Create(*std::move(spec));
    if (!t.ok()) std::abort();
    return t->release();
  }();
  return *tok;
}

}  // namespace ctxmem::fuzz
