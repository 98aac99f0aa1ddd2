#pragma once
// Memory blobs (DESIGN.md "Memory blob", docs/blob_format.md): sealing raw per-layer tensors
// plus BlobMetadata into a checksummed safetensors file, verifying one (checksums before any
// parsing), and opening one for reading through weights::SafetensorsFile.
// Thread-safety: free functions are thread-safe; MemoryBlob is const-methods-only.
//
// Integrity (format version 1). The header always begins with the bytes
//   kBlobHeaderPrefix <64 hex: header sha> kBlobHeaderInfix <64 hex: data sha> '"'
// right after the 8-byte length, so both checksums are read at fixed offsets without parsing:
//   data_sha256   = SHA-256 of the data section, bytes [8 + N, file end)
//   header_sha256 = SHA-256 of bytes [0, 8 + N) (length, JSON, padding) with the 64 hex
//                   characters of header_sha256 itself replaced by '0'
// The header covers data_sha256, so the two together cover every byte of the file.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/blob/blob_metadata.h"
#include "common/blob/safetensors_writer.h"
#include "common/weights/safetensors_file.h"

namespace ctxmem::blob {

inline constexpr absl::string_view kBlobHeaderPrefix =
    "{\"__metadata__\":{\"ctxmem.magic\":\"ctxmem-memory-blob\",\"ctxmem.header_sha256\":\"";
inline constexpr absl::string_view kBlobHeaderInfix = "\",\"ctxmem.data_sha256\":\"";
// File offsets of the two hex checksums.
inline constexpr uint64_t kHeaderShaOffset = 8 + kBlobHeaderPrefix.size();
inline constexpr uint64_t kDataShaOffset = kHeaderShaOffset + 64 + kBlobHeaderInfix.size();

// What a reader requires of a blob; empty fields are not checked.
struct BlobExpectations {
  std::string model_fingerprint;
  std::string tokenizer_fingerprint;
};

// A verified blob's metadata and checksums.
struct BlobInfo {
  BlobMetadata metadata;
  std::string header_sha256;    // 64 hex, as stored (and recomputed)
  std::string data_sha256;      // 64 hex, as stored (and recomputed)
  uint64_t n_bytes = 0;         // whole file
  uint64_t n_header_bytes = 0;  // 8 + N: where the data section starts
};

// Plans a blob: checks `metadata` (Validate) and that the layer tensors fit it (for each layer
// i < n_layers: layers.i.k and .v of kv_dtype with shape [n_kv_heads, n_kept[i], *], .src of
// I64 whose last dim is n_kept[i], and F32 .k_scale/.v_scale [n_kv_heads, 1, *] when int8),
// then lays it out with both checksums filled in. Other tensors are stored as given.
// InvalidArgument naming the tensor or field on any mismatch. `tensors` borrow their data.
absl::StatusOr<SafetensorsLayout> LayoutBlob(std::vector<RawTensor> tensors,
                                             const BlobMetadata& metadata);
// LayoutBlob, then the whole blob as bytes.
absl::StatusOr<std::string> SealBlob(std::vector<RawTensor> tensors, const BlobMetadata& metadata);
// LayoutBlob, then an atomic write to `path` (nothing visible there unless it all succeeds).
// Returns the blob size in bytes.
absl::StatusOr<uint64_t> SealBlobToFile(std::vector<RawTensor> tensors,
                                        const BlobMetadata& metadata, const std::string& path);

// Verifies a whole blob held in memory, in this order: length and magic prefix, header
// checksum, data checksum (DataLoss naming what failed, with stored and computed values), then
// parses: format version (FailedPrecondition if unknown), metadata, tensor table (contiguous
// extents covering the data section, layer tensors as in LayoutBlob; DataLoss otherwise), and
// finally `expect` (FailedPrecondition naming both fingerprints).
absl::StatusOr<BlobInfo> VerifyBlob(absl::string_view bytes, const BlobExpectations& expect = {});

// FailedPrecondition naming the blob's and the expected fingerprint on a mismatch.
absl::Status CheckExpectations(const BlobMetadata& metadata, const BlobExpectations& expect);

// A verified blob file opened for reading. Thread-safety: const methods only.
class MemoryBlob {
 public:
  // Maps `path`, VerifyBlob()s its bytes, then opens it with weights::SafetensorsFile. NotFound
  // for a missing file; DataLoss / FailedPrecondition as VerifyBlob; DataLoss if the file was
  // replaced between the two steps.
  static absl::StatusOr<std::unique_ptr<MemoryBlob>> Open(const std::string& path,
                                                          const BlobExpectations& expect = {});

  MemoryBlob(const MemoryBlob&) = delete;
  MemoryBlob& operator=(const MemoryBlob&) = delete;

  const BlobInfo& info() const { return info_; }
  const BlobMetadata& metadata() const { return info_.metadata; }
  // The tensors: file().Find(KeyTensorName(i)), file().TensorData(*info), ...
  const weights::SafetensorsFile& file() const { return *file_; }

 private:
  MemoryBlob(BlobInfo info, std::unique_ptr<weights::SafetensorsFile> file)
      : info_(std::move(info)), file_(std::move(file)) {}

  // Constant after construction.
  BlobInfo info_;
  std::unique_ptr<weights::SafetensorsFile> file_;
};

}  // namespace ctxmem::blob
