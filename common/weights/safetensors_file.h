#pragma once
// Read-only safetensors files (one file, or a sharded HF checkpoint folder with
// model.safetensors.index.json). Data is memory-mapped.
// Thread-safety: const methods only; safe to share across threads after Open().

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ctxmem::weights {

class MappedFile;

enum class StDtype { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool };

// Parses "F32", "BF16", ... (the safetensors header spelling).
absl::StatusOr<StDtype> ParseStDtype(std::string_view name);
std::string_view StDtypeName(StDtype dtype);
int64_t StDtypeBytes(StDtype dtype);

struct StTensorInfo {
  std::string name;
  StDtype dtype = StDtype::kF32;
  std::vector<int64_t> shape;  // outermost first
  int64_t n_elements = 0;
  uint64_t begin = 0;  // byte offset in the file (already includes the header)
  uint64_t n_bytes = 0;
};

class SafetensorsFile {
 public:
  // Opens and validates `path`: 8-byte header length, JSON header (bounded by the file size),
  // dtype names, shapes vs. byte extents, extents inside the file and not overlapping.
  // Errors name the file and the tensor (InvalidArgument; NotFound for a missing file).
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const std::vector<StTensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const StTensorInfo* Find(std::string_view name) const;  // nullptr if absent
  const uint8_t* TensorData(const StTensorInfo& info) const;
  // Converts a float tensor (F32/F16/BF16/F64) into `dst` (room for info.n_elements floats).
  absl::Status ReadF32(const StTensorInfo& info, float* dst) const;

 private:
  SafetensorsFile() = default;

  // Constant after construction.
  std::string path_;
  std::unique_ptr<MappedFile> file_;  // owns the mapping that data_ points into
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;  // bytes
  std::vector<StTensorInfo> tensors_;
  absl::flat_hash_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// A HF checkpoint folder: `model.safetensors`, or the shards listed by
// `model.safetensors.index.json`. Thread-safety: const methods only.
class SafetensorsCheckpoint {
 public:
  // InvalidArgument / NotFound naming the folder or shard on any problem.
  static absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> Open(const std::string& dir);

  // The tensor and the shard holding it; nullptr file when absent.
  struct Entry {
    const SafetensorsFile* file = nullptr;
    const StTensorInfo* info = nullptr;
  };
  Entry Find(std::string_view name) const;
  // Reads a float tensor by name; NotFound names the tensor and the folder.
  absl::StatusOr<std::vector<float>> ReadF32(std::string_view name,
                                             std::vector<int64_t>* shape) const;
  std::vector<std::string> TensorNames() const;

 private:
  SafetensorsCheckpoint() = default;
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  absl::flat_hash_map<std::string, Entry> index_;
};

}  // namespace ctxmem::weights
