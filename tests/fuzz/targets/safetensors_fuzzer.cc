// safetensors reader (common/weights/safetensors_file): any bytes must open to an error or to a
// file whose tensors lie inside it, do not overlap, and convert to floats.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/weights/safetensors_file.h"
#include "tests/fuzz/targets/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ctxmem::weights;
  const std::string& path = ctxmem::fuzz::WriteScratch(".safetensors", data, size);
  auto file = SafetensorsFile::Open(path);
  if (!file.ok()) return 0;
  const SafetensorsFile& f = **file;
  std::vector<std::pair<uint64_t, uint64_t>> extents;
  for (const StTensorInfo& t : f.tensors()) {
    CTXMEM_FUZZ_CHECK(f.Find(t.name) == &t);
    CTXMEM_FUZZ_CHECK(t.begin <= size && t.n_bytes <= size - t.begin);
    CTXMEM_FUZZ_CHECK(t.n_bytes == static_cast<uint64_t>(t.n_elements * StDtypeBytes(t.dtype)));
    extents.emplace_back(t.begin, t.begin + t.n_bytes);
    if (t.n_elements > (1 << 16)) continue;
    const bool is_float = t.dtype == StDtype::kF32 || t.dtype == StDtype::kF16 ||
                          t.dtype == StDtype::kBF16 || t.dtype == StDtype::kF64;
    std::vector<float> out(static_cast<size_t>(t.n_elements));
    const absl::Status s = f.ReadF32(t, out.data());
    if (is_float) CTXMEM_FUZZ_CHECK(s.ok());
  }
  std::sort(extents.begin(), extents.end());
  for (size_t i = 1; i < extents.size(); ++i) {
    // Empty tensors may share an offset; non-empty ones never overlap.
    if (extents[i].first != extents[i].second && extents[i - 1].first != extents[i - 1].second) {
      CTXMEM_FUZZ_CHECK(extents[i - 1].second <= extents[i].first);
    }
  }
  for (const auto& [key, value] : f.metadata()) (void)key.size(), (void)value.size();
  return 0;
}
