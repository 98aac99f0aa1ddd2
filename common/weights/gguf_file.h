#pragma once
// A read-only GGUF (v2/v3) file: metadata key/values, the tensor table and memory-mapped data.
// Thread-safety: const methods only; safe to share across threads after Open().

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/weights/ggml_type.h"

namespace ctxmem::weights {

class MappedFile;

// GGUF metadata value type ids, as stored on disk (GgufValue::type_id).
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

struct GgufValue;
// An array value. All elements share one GGUF type; nested arrays are allowed by the format.
using GgufArray = std::vector<GgufValue>;

// One metadata value. Integers of every width are widened to int64/uint64, floats to double;
// `type_id` keeps the on-disk GGUF value type (0 = uint8 ... 12 = float64).
struct GgufValue {
  uint32_t type_id = 0;
  std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray> value;
};

struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::kF32;
  std::vector<int64_t> shape;  // outermost first (the reverse of ggml's ne[]), e.g. [rows, cols]
  int64_t n_elements = 0;
  uint64_t offset = 0;   // bytes from the start of the file (already includes data start)
  uint64_t n_bytes = 0;  // bytes of data
};

class GgufFile {
 public:
  // Opens and validates `path`: magic, version, every length and count against the file size,
  // tensor types, alignment, tensor extents inside the file. Errors name the file and, where it
  // applies, the key or tensor (InvalidArgument for malformed content, NotFound for a missing
  // file). Never reads outside the mapping.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);

  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;
  ~GgufFile();

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }      // bytes; general.alignment or 32
  uint64_t data_offset() const { return data_offset_; }  // bytes from file start to tensor data
  uint64_t file_size() const { return size_; }           // bytes

  // nullptr when `key` is absent.
  const GgufValue* Find(std::string_view key) const;
  // Typed getters: NotFound when absent, InvalidArgument when the stored type does not fit.
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;   // any integer type
  absl::StatusOr<double> GetFloat(std::string_view key) const;  // float or integer types
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  absl::StatusOr<std::vector<std::string>> GetStringArray(std::string_view key) const;
  absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;
  absl::StatusOr<std::vector<double>> GetFloatArray(std::string_view key) const;
  // Every key, in file order.
  const std::vector<std::string>& keys() const { return keys_; }

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  // nullptr when no tensor has that name.
  const GgufTensorInfo* FindTensor(std::string_view name) const;
  // Raw bytes of a tensor (inside the mapping; valid while this object lives).
  const uint8_t* TensorData(const GgufTensorInfo& info) const;
  // Dequantizes a tensor into `dst` (room for info.n_elements floats, outermost dim first).
  absl::Status ReadTensorF32(const GgufTensorInfo& info, float* dst) const;
  // Same, by name, into a new vector. NotFound names the tensor and the file.
  absl::StatusOr<std::vector<float>> ReadTensorF32(std::string_view name) const;

 private:
  GgufFile() = default;

  // Constant after construction.
  std::string path_;
  uint32_t version_ = 0;
  std::unique_ptr<MappedFile> file_;  // owns the mapping that data_ points into
  const uint8_t* data_ = nullptr;     // mapping of the whole file
  uint64_t size_ = 0;                 // bytes
  uint64_t alignment_ = 32;           // bytes
  uint64_t data_offset_ = 0;          // bytes, a multiple of alignment_
  std::vector<std::string> keys_;
  absl::flat_hash_map<std::string, GgufValue> kv_;
  std::vector<GgufTensorInfo> tensors_;
  absl::flat_hash_map<std::string, size_t> tensor_index_;
};

}  // namespace ctxmem::weights
