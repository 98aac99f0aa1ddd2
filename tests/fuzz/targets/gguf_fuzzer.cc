// GGUF reader (common/weights/gguf_file): any bytes must open to an error or to a file whose
// every key and tensor can be read back within the bounds it claims.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/weights/gguf_file.h"
#include "tests/fuzz/targets/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ctxmem::weights::GgufFile;
  const std::string& path = ctxmem::fuzz::WriteScratch(".gguf", data, size);
  auto file = GgufFile::Open(path);
  if (!file.ok()) return 0;
  const GgufFile& f = **file;
  // The aligned data section may start past the end only when there is no tensor data.
  CTXMEM_FUZZ_CHECK(f.data_offset() <= f.file_size() || f.tensors().empty());
  for (const std::string& key : f.keys()) {
    CTXMEM_FUZZ_CHECK(f.Find(key) != nullptr);
    (void)f.GetInt(key);
    (void)f.GetFloat(key);
    (void)f.GetBool(key);
    (void)f.GetString(key);
    (void)f.GetStringArray(key);
    (void)f.GetIntArray(key);
    (void)f.GetFloatArray(key);
  }
  for (const auto& t : f.tensors()) {
    CTXMEM_FUZZ_CHECK(f.FindTensor(t.name) != nullptr);
    CTXMEM_FUZZ_CHECK(t.offset <= f.file_size() && t.n_bytes <= f.file_size() - t.offset);
    if (t.n_elements < 0 || t.n_elements > (1 << 16)) continue;  // bounded work per input
    std::vector<float> out(static_cast<size_t>(t.n_elements));
    (void)f.ReadTensorF32(t, out.data());
  }
  return 0;
}
