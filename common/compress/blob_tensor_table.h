#pragma once
// BlobTensorTable: name -> tensor lookup over a verified memory blob (a parsed
// weights::SafetensorsFile, or raw verified bytes whose header is re-read and bounds-checked),
// and the checks every memory decoder (memory_codec, kivi_blob_codec) makes of what it finds:
// dtype and shape as the metadata says, or DataLoss naming the tensor.
// Thread-safety: a table is immutable after construction; lookups are thread-safe while the
// bytes it borrows stay alive.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/weights/safetensors_file.h"

namespace ctxmem::compress {

// A tensor of a verified blob, borrowed from its bytes.
struct BlobTensorRef {
  weights::StDtype dtype = weights::StDtype::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  uint64_t n_bytes = 0;
};

// DataLoss "blob has no tensor NAME" (or a malformed entry) when it is not there.
using BlobTensorTable = std::function<absl::StatusOr<BlobTensorRef>(const std::string& name)>;

// The table of a parsed file (borrowed: `file` must outlive the table).
BlobTensorTable TableOfFile(const weights::SafetensorsFile& file);
// The table of a verified blob's bytes (borrowed), its header re-read and every entry
// bounds-checked against the bytes. DataLoss for a short blob or a header that is not JSON.
absl::StatusOr<BlobTensorTable> TableOfBytes(absl::string_view verified_bytes);

// The tensor `name`, which must be `dtype` and `shape`: DataLoss naming both otherwise.
absl::StatusOr<BlobTensorRef> NeedTensor(const BlobTensorTable& table, const std::string& name,
                                         weights::StDtype dtype, const std::vector<int64_t>& shape);

// The torch type of a memory dtype (F32, F16, BF16, I64, I32, I8, U8); DataLoss otherwise.
absl::StatusOr<at::ScalarType> TorchTypeOf(weights::StDtype dtype);
// An owned CPU copy of a blob tensor.
absl::StatusOr<at::Tensor> CopyToTorch(const BlobTensorRef& ref);

// "[2, 11, 8]".
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace ctxmem::compress
