#pragma once
// SafetensorsLayout: a safetensors file planned in memory from borrowed raw tensors and string
// metadata, then written atomically (AtomicFile) or into a byte string. Files it writes are read
// back by weights::SafetensorsFile and by the `safetensors` Python package.
// Thread-safety: const methods only; safe to share after Build().
//
// Layout written (little-endian), as the safetensors format defines it:
//
//   u64 N                   header length in bytes; N % 8 == 0, so the data section starts
//                           8-byte aligned
//   N bytes of JSON         {"__metadata__":{"k":"v",...},"<name>":{"dtype":"F32",
//                           "shape":[d0,...],"data_offsets":[begin,end]},...} compact, keys
//                           in the order described below, then ' ' padding up to N
//   data section            the tensors back to back, no gaps, in file order
//
// File order of tensors: element width descending (8, 4, 2, 1 bytes), then name ascending, so
// every tensor starts aligned to its element width. Metadata entries keep the order given to
// Build() (memory_blob relies on this to put its checksums at fixed byte offsets).

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/weights/safetensors_file.h"

namespace ctxmem::blob {

class AtomicFile;

// A tensor to write, as raw bytes; the bytes are borrowed, not copied.
struct RawTensor {
  std::string name;  // non-empty valid UTF-8, not "__metadata__"
  weights::StDtype dtype = weights::StDtype::kF32;
  std::vector<int64_t> shape;  // outermost first; {} = a scalar (1 element)
  // n_elements * StDtypeBytes(dtype) bytes in the host's (little-endian) order; may be null
  // for 0 elements. Must stay alive and unchanged while a layout built from it is used.
  const void* data = nullptr;
};

using MetadataEntries = std::vector<std::pair<std::string, std::string>>;

class SafetensorsLayout {
 public:
  // The format's own bound on the header (the Rust reference rejects bigger ones).
  static constexpr uint64_t kMaxHeaderBytes = 100'000'000;

  // Lays out `tensors` and `metadata`. InvalidArgument naming the tensor or key for: an empty,
  // duplicate or reserved name; invalid UTF-8; a negative dimension; an element or byte count
  // that overflows; null data with bytes to write; a duplicate metadata key; a header bigger
  // than kMaxHeaderBytes.
  static absl::StatusOr<SafetensorsLayout> Build(std::vector<RawTensor> tensors,
                                                 MetadataEntries metadata);

  // u64 length + JSON + padding; size() % 8 == 0.
  const std::string& header() const { return header_; }
  const std::vector<RawTensor>& tensors() const { return tensors_; }  // file order
  uint64_t tensor_n_bytes(size_t i) const { return tensor_n_bytes_[i]; }
  uint64_t data_bytes() const { return data_bytes_; }  // bytes after the header
  uint64_t total_bytes() const { return header_.size() + data_bytes_; }

  // Byte offset (in header(), so including the 8-byte length) of the first character inside
  // the quotes of metadata `key`'s value, or -1 if there is no such key.
  int64_t MetadataValueOffset(absl::string_view key) const;
  // Overwrites metadata `key`'s value in place with `value`, which must serialize to the same
  // number of JSON bytes (e.g. a checksum placeholder of the same length). InvalidArgument
  // otherwise, or NotFound for an unknown key; the header is unchanged then.
  absl::Status ReplaceMetadataValue(absl::string_view key, absl::string_view value);

  // Appends the header and every tensor's bytes to `file`; the caller commits it.
  absl::Status AppendTo(AtomicFile* file) const;
  // Writes the whole file to `path` atomically (temp file, fsync, rename, fsync dir).
  absl::Status WriteToFile(const std::string& path) const;
  // The whole file as one string (total_bytes() long).
  std::string ToBytes() const;

 private:
  SafetensorsLayout() = default;

  struct ValueSpan {
    std::string key;
    uint64_t offset = 0;   // in header_, first byte of the JSON string (its opening quote)
    uint64_t n_bytes = 0;  // serialized length, quotes included
  };

  std::string header_;
  std::vector<RawTensor> tensors_;
  std::vector<uint64_t> tensor_n_bytes_;  // per tensor, file order
  uint64_t data_bytes_ = 0;
  std::vector<ValueSpan> value_spans_;  // metadata order
};

// True when `text` is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF).
bool IsValidUtf8(absl::string_view text);

}  // namespace ctxmem::blob
