#include "common/weights/gguf_file.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/weights/mapped_file.h"

// GGUF on-disk layout (v2 and v3; little-endian; v1 with 32-bit counts is rejected):
//
//   u32 magic "GGUF" (bytes 47 47 55 46) | u32 version | u64 tensor_count | u64 kv_count
//   kv_count x  { string key | u32 value_type | value }
//   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   zero padding up to a multiple of general.alignment (default 32)
//   tensor data; each tensor's offset is relative to this point and a multiple of the alignment
//
//   string = u64 length | bytes (no terminator)
//   value  = u8/i8/bool 1 byte, u16/i16 2, u32/i32/f32 4, u64/i64/f64 8, string,
//            or array = u32 element_type | u64 count | count x value (arrays may nest)
//   ne[0] is the innermost (contiguous) dimension; shape() lists ne in reverse.
//
// Invariants after Open(): every tensor's [offset, offset + n_bytes) lies inside the mapping,
// its offset is a multiple of alignment(), extents of different tensors do not overlap, and
// n_bytes == GgmlByteSize(type, n_elements). Every key and tensor name is unique.

namespace ctxmem::weights {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;   // "GGUF" read as a little-endian u32
constexpr uint64_t kDefaultAlignment = 32;    // bytes
constexpr uint64_t kMaxAlignment = 1u << 20;  // bytes; larger values are treated as corrupt
constexpr uint32_t kMaxDims = 4;              // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;             // nesting limit for arrays of arrays
// Limit on metadata values (array elements included) per file: a GgufValue takes ~48 bytes in
// memory for a 1-byte value on disk, so an unchecked count could turn a corrupt 100 MB file
// into gigabytes of allocations. Real vocabularies hold a few hundred thousand entries.
constexpr uint64_t kMaxMetadataValues = uint64_t{1} << 24;

// absl::string_view is not std::string_view in this build (ABSL_OPTION_USE_STD_STRING_VIEW=0).
inline absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

const char* ValueTypeName(uint32_t type_id) {
  static constexpr const char* kNames[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                           "int32",  "float32", "bool",   "string", "array",
                                           "uint64", "int64",   "float64"};
  return type_id < std::size(kNames) ? kNames[type_id] : "unknown";
}

// Smallest number of bytes one value of `type_id` takes on disk; 0 for an unknown type.
uint64_t MinValueBytes(uint32_t type_id) {
  switch (static_cast<GgufValueType>(type_id)) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
    case GgufValueType::kString:
      return 8;
    case GgufValueType::kArray:
      return 12;
  }
  return 0;
}

// A bounds-checked cursor over the mapped bytes. Errors name the file and the byte offset.
class Reader {
 public:
  Reader(const std::string& path, const uint8_t* data, uint64_t size)
      : path_(path), data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  // Put in front of every error message until changed, e.g. "key 'general.name': ".
  void set_context(std::string context) { context_ = std::move(context); }
  uint64_t remaining() const { return size_ - pos_; }

  absl::Status Need(uint64_t n, absl::string_view what) const {
    if (n > remaining()) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": ", context_, "truncated reading ",
                                                     what, " at byte ", pos_, ": need ", n,
                                                     " bytes, ", remaining(), " left"));
    }
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status Read(T* out, absl::string_view what) {
    CTXMEM_RETURN_IF_ERROR(Need(sizeof(T), what));
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return absl::OkStatus();
  }

  absl::Status ReadString(std::string* out, absl::string_view what) {
    uint64_t len = 0;
    CTXMEM_RETURN_IF_ERROR(Read(&len, what));
    CTXMEM_RETURN_IF_ERROR(Need(len, what));
    out->assign(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return absl::OkStatus();
  }

  // Takes `n` values from the per-file metadata budget; ResourceExhausted when it runs out.
  absl::Status ChargeValues(uint64_t n) {
    if (n > values_left_) {
      return absl::ResourceExhaustedError(absl::StrCat(path_, ": ", context_, "more than ",
                                                       kMaxMetadataValues,
                                                       " metadata values (at byte ", pos_, ")"));
    }
    values_left_ -= n;
    return absl::OkStatus();
  }

  absl::Status Error(absl::string_view message) const {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": ", context_, message, " (at byte ", pos_, ")"));
  }

 private:
  const std::string& path_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  uint64_t values_left_ = kMaxMetadataValues;
  std::string context_;
};

template <typename T, typename Wide>
absl::Status ReadScalar(Reader& r, GgufValue* out) {
  T v;
  CTXMEM_RETURN_IF_ERROR(r.Read(&v, "value"));
  out->value = static_cast<Wide>(v);
  return absl::OkStatus();
}

absl::Status ReadValue(Reader& r, uint32_t type_id, int depth, GgufValue* out) {
  out->type_id = type_id;
  switch (static_cast<GgufValueType>(type_id)) {
    case GgufValueType::kUint8:
      return ReadScalar<uint8_t, uint64_t>(r, out);
    case GgufValueType::kInt8:
      return ReadScalar<int8_t, int64_t>(r, out);
    case GgufValueType::kUint16:
      return ReadScalar<uint16_t, uint64_t>(r, out);
    case GgufValueType::kInt16:
      return ReadScalar<int16_t, int64_t>(r, out);
    case GgufValueType::kUint32:
      return ReadScalar<uint32_t, uint64_t>(r, out);
    case GgufValueType::kInt32:
      return ReadScalar<int32_t, int64_t>(r, out);
    case GgufValueType::kUint64:
      return ReadScalar<uint64_t, uint64_t>(r, out);
    case GgufValueType::kInt64:
      return ReadScalar<int64_t, int64_t>(r, out);
    case GgufValueType::kFloat32:
      return ReadScalar<float, double>(r, out);
    case GgufValueType::kFloat64:
      return ReadScalar<double, double>(r, out);
    case GgufValueType::kBool: {
      uint8_t v = 0;
      CTXMEM_RETURN_IF_ERROR(r.Read(&v, "bool value"));
      out->value = v != 0;
      return absl::OkStatus();
    }
    case GgufValueType::kString: {
      std::string s;
      CTXMEM_RETURN_IF_ERROR(r.ReadString(&s, "string value"));
      out->value = std::move(s);
      return absl::OkStatus();
    }
    case GgufValueType::kArray: {
      if (depth >= kMaxArrayDepth) {
        return r.Error(absl::StrCat("arrays nested deeper than ", kMaxArrayDepth));
      }
      uint32_t elem_type = 0;
      uint64_t count = 0;
      CTXMEM_RETURN_IF_ERROR(r.Read(&elem_type, "array element type"));
      CTXMEM_RETURN_IF_ERROR(r.Read(&count, "array length"));
      const uint64_t min_bytes = MinValueBytes(elem_type);
      if (min_bytes == 0) {
        return r.Error(absl::StrCat("unknown array element type ", elem_type));
      }
      if (count > r.remaining() / min_bytes) {
        return r.Error(absl::StrCat("array of ", count, " ", ValueTypeName(elem_type),
                                    " values needs at least ", min_bytes, " bytes each but only ",
                                    r.remaining(), " bytes are left"));
      }
      CTXMEM_RETURN_IF_ERROR(r.ChargeValues(count));
      GgufArray array(count);
      for (uint64_t i = 0; i < count; ++i) {
        CTXMEM_RETURN_IF_ERROR(ReadValue(r, elem_type, depth + 1, &array[i]));
      }
      out->value = std::move(array);
      return absl::OkStatus();
    }
  }
  return r.Error(absl::StrCat("unknown value type ", type_id));
}

absl::StatusOr<int64_t> ValueAsInt(const GgufValue& v) {
  if (const int64_t* i = std::get_if<int64_t>(&v.value)) return *i;
  if (const uint64_t* u = std::get_if<uint64_t>(&v.value)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(absl::StrCat("value ", *u, " does not fit in int64"));
    }
    return static_cast<int64_t>(*u);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("has type ", ValueTypeName(v.type_id), ", want an integer"));
}

absl::StatusOr<double> ValueAsFloat(const GgufValue& v) {
  if (const double* d = std::get_if<double>(&v.value)) return *d;
  if (const int64_t* i = std::get_if<int64_t>(&v.value)) return static_cast<double>(*i);
  if (const uint64_t* u = std::get_if<uint64_t>(&v.value)) return static_cast<double>(*u);
  return absl::InvalidArgumentError(
      absl::StrCat("has type ", ValueTypeName(v.type_id), ", want a number"));
}

}  // namespace

GgufFile::~GgufFile() = default;

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  CTXMEM_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapped, MappedFile::Open(path));
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->path_ = path;
  file->data_ = mapped->data();
  file->size_ = mapped->size();
  file->file_ = std::move(mapped);
  Reader r(file->path_, file->data_, file->size_);

  // Header.
  uint32_t magic = 0;
  CTXMEM_RETURN_IF_ERROR(r.Read(&magic, "magic"));
  if (magic != kGgufMagic) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a GGUF file (magic 0x",
                                                   absl::Hex(magic), ", want 0x",
                                                   absl::Hex(kGgufMagic), ")"));
  }
  CTXMEM_RETURN_IF_ERROR(r.Read(&file->version_, "version"));
  if (file->version_ != 2 && file->version_ != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": unsupported GGUF version ", file->version_, " (supported: 2, 3)"));
  }
  uint64_t n_tensors = 0;
  uint64_t n_kv = 0;
  CTXMEM_RETURN_IF_ERROR(r.Read(&n_tensors, "tensor count"));
  CTXMEM_RETURN_IF_ERROR(r.Read(&n_kv, "key/value count"));
  // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at
  // least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset).
  if (n_kv > r.remaining() / 13) {
    return r.Error(
        absl::StrCat("kv_count=", n_kv, " cannot fit in the ", r.remaining(), " bytes left"));
  }
  if (n_tensors > r.remaining() / 24) {
    return r.Error(absl::StrCat("tensor_count=", n_tensors, " cannot fit in the ", r.remaining(),
                                " bytes left"));
  }

  // Metadata.
  file->keys_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key;
    CTXMEM_RETURN_IF_ERROR(r.ReadString(&key, absl::StrCat("key #", i)));
    uint32_t type_id = 0;
    CTXMEM_RETURN_IF_ERROR(r.Read(&type_id, absl::StrCat("type of key '", key, "'")));
    GgufValue value;
    r.set_context(absl::StrCat("key '", key, "': "));
    CTXMEM_RETURN_IF_ERROR(ReadValue(r, type_id, 0, &value));
    r.set_context("");
    if (file->kv_.contains(key)) return r.Error(absl::StrCat("duplicate key '", key, "'"));
    file->kv_.emplace(key, std::move(value));
    file->keys_.push_back(std::move(key));
  }
  if (const GgufValue* align = file->Find("general.alignment")) {
    absl::StatusOr<int64_t> a = ValueAsInt(*align);
    if (!a.ok() || *a <= 0 || static_cast<uint64_t>(*a) > kMaxAlignment || (*a & (*a - 1)) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": general.alignment must be a power of two in [1, ", kMaxAlignment,
                       "], got ", a.ok() ? absl::StrCat(*a) : std::string(a.status().message())));
    }
    file->alignment_ = static_cast<uint64_t>(*a);
  } else {
    file->alignment_ = kDefaultAlignment;
  }

  // Tensor infos.
  file->tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo info;
    CTXMEM_RETURN_IF_ERROR(r.ReadString(&info.name, absl::StrCat("name of tensor #", i)));
    const std::string where = absl::StrCat("tensor '", info.name, "'");
    uint32_t n_dims = 0;
    CTXMEM_RETURN_IF_ERROR(r.Read(&n_dims, where));
    if (n_dims > kMaxDims) {
      return r.Error(absl::StrCat(where, " has n_dims=", n_dims, " > ", kMaxDims));
    }
    uint64_t ne[kMaxDims] = {1, 1, 1, 1};
    int64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      CTXMEM_RETURN_IF_ERROR(r.Read(&ne[d], where));
      if (ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return r.Error(absl::StrCat(where, " has ne[", d, "]=", ne[d], ", which is negative"));
      }
      const int64_t dim = static_cast<int64_t>(ne[d]);
      if (dim != 0 && n_elements > std::numeric_limits<int64_t>::max() / dim) {
        return r.Error(absl::StrCat(where, ": element count overflows at ne[", d, "]=", dim));
      }
      n_elements *= dim;
    }
    uint32_t type_id = 0;
    CTXMEM_RETURN_IF_ERROR(r.Read(&type_id, where));
    absl::StatusOr<GgmlTypeTraits> traits = GetGgmlTypeTraits(type_id);
    if (!traits.ok()) return r.Error(absl::StrCat(where, ": ", traits.status().message()));
    CTXMEM_RETURN_IF_ERROR(r.Read(&info.offset, where));
    if (ne[0] % static_cast<uint64_t>(traits->block_elems) != 0) {
      return r.Error(absl::StrCat(where, " of type ", AsAbsl(traits->name), " has ne[0]=", ne[0],
                                  ", not a multiple of the block size ", traits->block_elems));
    }
    info.type = static_cast<GgmlType>(type_id);
    info.n_elements = n_elements;
    for (uint32_t d = n_dims; d > 0; --d) info.shape.push_back(static_cast<int64_t>(ne[d - 1]));
    absl::StatusOr<uint64_t> n_bytes = GgmlByteSize(info.type, n_elements);
    if (!n_bytes.ok()) return r.Error(absl::StrCat(where, ": ", n_bytes.status().message()));
    info.n_bytes = *n_bytes;
    if (file->tensor_index_.contains(info.name)) {
      return r.Error(absl::StrCat("duplicate tensor name '", info.name, "'"));
    }
    file->tensor_index_.emplace(info.name, file->tensors_.size());
    file->tensors_.push_back(std::move(info));
  }

  // Data section: starts at the next multiple of the alignment (pos() <= size, so no overflow).
  const uint64_t a = file->alignment_;
  file->data_offset_ = (r.pos() + a - 1) / a * a;
  if (n_tensors > 0 && file->data_offset_ > file->size_) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": tensor data starts at byte ",
                                                   file->data_offset_, " but the file has only ",
                                                   file->size_, " bytes"));
  }
  const uint64_t data_bytes = n_tensors > 0 ? file->size_ - file->data_offset_ : 0;
  std::vector<std::pair<uint64_t, size_t>> by_offset;  // (relative offset, tensor index)
  by_offset.reserve(file->tensors_.size());
  for (size_t i = 0; i < file->tensors_.size(); ++i) {
    GgufTensorInfo& info = file->tensors_[i];
    if (info.offset % a != 0) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": tensor '", info.name, "' offset ",
                                                     info.offset, " is not a multiple of the ",
                                                     "alignment ", a));
    }
    if (info.offset > data_bytes || info.n_bytes > data_bytes - info.offset) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor '", info.name, "' needs ", info.n_bytes,
                       " bytes at data offset ", info.offset, " but the data section (from byte ",
                       file->data_offset_, ") has only ", data_bytes, " bytes"));
    }
    by_offset.emplace_back(info.offset, i);
    info.offset += file->data_offset_;
  }
  std::sort(by_offset.begin(), by_offset.end());
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const GgufTensorInfo& prev = file->tensors_[by_offset[k - 1].second];
    const GgufTensorInfo& cur = file->tensors_[by_offset[k].second];
    if (prev.n_bytes > 0 && cur.n_bytes > 0 && prev.offset + prev.n_bytes > cur.offset) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensors '", prev.name, "' and '", cur.name, "' overlap"));
    }
  }
  return file;
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = kv_.find(AsAbsl(key));
  return it == kv_.end() ? nullptr : &it->second;
}

namespace {

absl::Status MissingKey(const std::string& path, std::string_view key) {
  return absl::NotFoundError(absl::StrCat(path, ": no metadata key '", AsAbsl(key), "'"));
}

absl::Status WrongType(const std::string& path, std::string_view key, absl::string_view detail) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": key '", AsAbsl(key), "' ", detail));
}

// Converts every element of the array at `key` with `convert`.
template <typename T, typename Convert>
absl::StatusOr<std::vector<T>> ArrayOf(const std::string& path, std::string_view key,
                                       const GgufValue* v, Convert convert) {
  if (v == nullptr) return MissingKey(path, key);
  const GgufArray* array = std::get_if<GgufArray>(&v->value);
  if (array == nullptr) {
    return WrongType(path, key,
                     absl::StrCat("has type ", ValueTypeName(v->type_id), ", want an array"));
  }
  std::vector<T> out;
  out.reserve(array->size());
  for (size_t i = 0; i < array->size(); ++i) {
    absl::StatusOr<T> element = convert((*array)[i]);
    if (!element.ok()) {
      return WrongType(path, key, absl::StrCat("element ", i, " ", element.status().message()));
    }
    out.push_back(*std::move(element));
  }
  return out;
}

absl::StatusOr<std::string> ValueAsString(const GgufValue& v) {
  if (const std::string* s = std::get_if<std::string>(&v.value)) return *s;
  return absl::InvalidArgumentError(
      absl::StrCat("has type ", ValueTypeName(v.type_id), ", want a string"));
}

}  // namespace

absl::StatusOr<int64_t> GgufFile::GetInt(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return MissingKey(path_, key);
  absl::StatusOr<int64_t> i = ValueAsInt(*v);
  if (!i.ok()) return WrongType(path_, key, i.status().message());
  return i;
}

absl::StatusOr<double> GgufFile::GetFloat(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return MissingKey(path_, key);
  absl::StatusOr<double> d = ValueAsFloat(*v);
  if (!d.ok()) return WrongType(path_, key, d.status().message());
  return d;
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return MissingKey(path_, key);
  if (const bool* b = std::get_if<bool>(&v->value)) return *b;
  return WrongType(path_, key, absl::StrCat("has type ", ValueTypeName(v->type_id), ", want bool"));
}

absl::StatusOr<std::string> GgufFile::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return MissingKey(path_, key);
  absl::StatusOr<std::string> s = ValueAsString(*v);
  if (!s.ok()) return WrongType(path_, key, s.status().message());
  return s;
}

absl::StatusOr<std::vector<std::string>> GgufFile::GetStringArray(std::string_view key) const {
  return ArrayOf<std::string>(path_, key, Find(key), ValueAsString);
}

absl::StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  return ArrayOf<int64_t>(path_, key, Find(key), ValueAsInt);
}

absl::StatusOr<std::vector<double>> GgufFile::GetFloatArray(std::string_view key) const {
  return ArrayOf<double>(path_, key, Find(key), ValueAsFloat);
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(AsAbsl(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const uint8_t* GgufFile::TensorData(const GgufTensorInfo& info) const {
  return data_ + info.offset;
}

absl::Status GgufFile::ReadTensorF32(const GgufTensorInfo& info, float* dst) const {
  // `info` should come from tensors(); re-check its extent so a hand-made one cannot read past
  // the mapping.
  if (info.offset > size_ || info.n_bytes > size_ - info.offset) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": tensor '", info.name, "' extent [",
                                                   info.offset, ", +", info.n_bytes,
                                                   ") is outside the ", size_, "-byte file"));
  }
  return WithContext(
      DequantizeGgml(info.type, TensorData(info), info.n_bytes, info.n_elements, dst),
      absl::StrCat(path_, ": tensor '", info.name, "'"));
}

absl::StatusOr<std::vector<float>> GgufFile::ReadTensorF32(std::string_view name) const {
  const GgufTensorInfo* info = FindTensor(name);
  if (info == nullptr) {
    return absl::NotFoundError(absl::StrCat(path_, ": no tensor '", AsAbsl(name), "'"));
  }
  std::vector<float> out(static_cast<size_t>(info->n_elements));
  CTXMEM_RETURN_IF_ERROR(ReadTensorF32(*info, out.data()));
  return out;
}

}  // namespace ctxmem::weights
