#include "common/weights/safetensors_file.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "common/weights/float16.h"
#include "common/weights/mapped_file.h"
#include "nlohmann/json.hpp"

// safetensors on-disk layout (little-endian):
//
//   u64 N (header length, bytes) | N bytes of UTF-8 JSON | data section
//   JSON: { "__metadata__": {string: string, ...} (optional),
//           "<tensor name>": {"dtype": "F32", "shape": [d0, d1, ...],
//                             "data_offsets": [begin, end]}, ... }
//   begin/end are byte offsets relative to the start of the data section (8 + N).
//
// Invariants after Open(): every tensor satisfies end - begin == n_elements * dtype bytes,
// lies inside the data section, and no two tensors with data overlap. tensors() is sorted by
// data offset (file order). A sharded checkpoint maps each tensor of its
// model.safetensors.index.json "weight_map" to the shard that really holds it.

namespace ctxmem::weights {
namespace {

// The header is parsed into a DOM; bound it like the reference implementation (100 MB).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// absl::string_view is not std::string_view in this build (ABSL_OPTION_USE_STD_STRING_VIEW=0).
inline absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

struct DtypeEntry {
  StDtype dtype;
  std::string_view name;
  int64_t bytes;
};

// The single name table of StDtype (STYLE rule 37).
constexpr DtypeEntry kDtypes[] = {
    {StDtype::kF32, "F32", 4},   {StDtype::kF16, "F16", 2}, {StDtype::kBF16, "BF16", 2},
    {StDtype::kF64, "F64", 8},   {StDtype::kI64, "I64", 8}, {StDtype::kI32, "I32", 4},
    {StDtype::kI16, "I16", 2},   {StDtype::kI8, "I8", 1},   {StDtype::kU8, "U8", 1},
    {StDtype::kBool, "BOOL", 1},
};

const DtypeEntry& EntryOf(StDtype dtype) {
  for (const DtypeEntry& e : kDtypes) {
    if (e.dtype == dtype) return e;
  }
  return kDtypes[0];  // unreachable: every enumerator is in the table
}

// Parses one tensor entry of the header into `info` (offsets still relative to the data start).
absl::Status ParseTensorEntry(const nlohmann::json& entry, uint64_t data_bytes,
                              StTensorInfo* info) {
  if (!entry.is_object()) return absl::InvalidArgumentError("entry is not a JSON object");
  auto dtype_it = entry.find("dtype");
  auto shape_it = entry.find("shape");
  auto offsets_it = entry.find("data_offsets");
  if (dtype_it == entry.end() || !dtype_it->is_string()) {
    return absl::InvalidArgumentError("missing string \"dtype\"");
  }
  if (shape_it == entry.end() || !shape_it->is_array()) {
    return absl::InvalidArgumentError("missing array \"shape\"");
  }
  if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
      !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
    return absl::InvalidArgumentError(
        "\"data_offsets\" must be an array of two non-negative integers");
  }
  CTXMEM_ASSIGN_OR_RETURN(info->dtype, ParseStDtype(dtype_it->get_ref<const std::string&>()));
  int64_t n_elements = 1;
  for (const nlohmann::json& dim_json : *shape_it) {
    if (!dim_json.is_number_unsigned()) {
      return absl::InvalidArgumentError("\"shape\" entries must be non-negative integers");
    }
    const uint64_t dim = dim_json.get<uint64_t>();
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        (dim != 0 &&
         n_elements > std::numeric_limits<int64_t>::max() / static_cast<int64_t>(dim))) {
      return absl::InvalidArgumentError(absl::StrCat("element count overflows at dim ", dim));
    }
    n_elements *= static_cast<int64_t>(dim);
    info->shape.push_back(static_cast<int64_t>(dim));
  }
  info->n_elements = n_elements;
  const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
  const uint64_t end = (*offsets_it)[1].get<uint64_t>();
  if (end < begin || end > data_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("data_offsets [", begin, ", ", end,
                                                   ") are not inside the ", data_bytes,
                                                   "-byte data section"));
  }
  const uint64_t elem_bytes = static_cast<uint64_t>(StDtypeBytes(info->dtype));
  const uint64_t n = static_cast<uint64_t>(n_elements);
  if (n > std::numeric_limits<uint64_t>::max() / elem_bytes || n * elem_bytes != end - begin) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shape [", absl::StrJoin(info->shape, ", "), "] of ", AsAbsl(StDtypeName(info->dtype)),
        " needs ", n_elements, " x ", elem_bytes, " bytes but data_offsets span ", end - begin));
  }
  info->begin = begin;
  info->n_bytes = end - begin;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<StDtype> ParseStDtype(std::string_view name) {
  for (const DtypeEntry& e : kDtypes) {
    if (e.name == name) return e.dtype;
  }
  std::vector<absl::string_view> known;
  for (const DtypeEntry& e : kDtypes) known.push_back(AsAbsl(e.name));
  return absl::InvalidArgumentError(absl::StrCat("unsupported safetensors dtype '", AsAbsl(name),
                                                 "' (known: ", absl::StrJoin(known, ", "), ")"));
}

std::string_view StDtypeName(StDtype dtype) { return EntryOf(dtype).name; }

int64_t StDtypeBytes(StDtype dtype) { return EntryOf(dtype).bytes; }

SafetensorsFile::~SafetensorsFile() = default;

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  CTXMEM_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapped, MappedFile::Open(path));
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->data_ = mapped->data();
  file->size_ = mapped->size();
  file->file_ = std::move(mapped);
  const uint64_t size = file->size_;
  if (size < 8) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", size, " bytes is too small for a safetensors file (need >= 8)"));
  }
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, file->data_, sizeof(header_bytes));
  if (header_bytes > size - 8 || header_bytes > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": header length ", header_bytes, " exceeds the file (", size - 8,
                     " bytes after the length) or the limit ", kMaxHeaderBytes));
  }
  const char* header_begin = reinterpret_cast<const char*>(file->data_ + 8);
  nlohmann::json header =
      nlohmann::json::parse(header_begin, header_begin + header_bytes, nullptr, false);
  if (header.is_discarded() || !header.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": header (", header_bytes, " bytes) is not a JSON object"));
  }
  const uint64_t data_start = 8 + header_bytes;
  const uint64_t data_bytes = size - data_start;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": __metadata__ is not an object"));
      }
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ": __metadata__ value of '", m.key(), "' is not a string"));
        }
        file->metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    StTensorInfo info;
    info.name = it.key();
    absl::Status status = ParseTensorEntry(*it, data_bytes, &info);
    if (!status.ok()) {
      return WithContext(status, absl::StrCat(path, ": tensor '", info.name, "'"));
    }
    info.begin += data_start;
    file->tensors_.push_back(std::move(info));
  }
  std::sort(file->tensors_.begin(), file->tensors_.end(),
            [](const StTensorInfo& a, const StTensorInfo& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.n_bytes < b.n_bytes;
            });
  const StTensorInfo* prev = nullptr;  // last tensor with data
  for (size_t i = 0; i < file->tensors_.size(); ++i) {
    const StTensorInfo& cur = file->tensors_[i];
    if (cur.n_bytes == 0) continue;
    if (prev != nullptr && prev->begin + prev->n_bytes > cur.begin) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensors '", prev->name, "' and '", cur.name, "' overlap"));
    }
    prev = &cur;
  }
  for (size_t i = 0; i < file->tensors_.size(); ++i) {
    file->index_.emplace(file->tensors_[i].name, i);
  }
  return file;
}

const StTensorInfo* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(AsAbsl(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const uint8_t* SafetensorsFile::TensorData(const StTensorInfo& info) const {
  return data_ + info.begin;
}

absl::Status SafetensorsFile::ReadF32(const StTensorInfo& info, float* dst) const {
  const uint64_t elem_bytes = static_cast<uint64_t>(StDtypeBytes(info.dtype));
  if (info.begin > size_ || info.n_bytes > size_ - info.begin || info.n_elements < 0 ||
      static_cast<uint64_t>(info.n_elements) != info.n_bytes / elem_bytes ||
      info.n_bytes % elem_bytes != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": tensor '", info.name, "' extent [",
                                                   info.begin, ", +", info.n_bytes,
                                                   ") does not match this file"));
  }
  const uint8_t* src = TensorData(info);
  const int64_t n = info.n_elements;
  switch (info.dtype) {
    case StDtype::kF32:
      if (n > 0) std::memcpy(dst, src, info.n_bytes);
      return absl::OkStatus();
    case StDtype::kF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, sizeof(h));
        dst[i] = HalfToFloat(h);
      }
      return absl::OkStatus();
    case StDtype::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t b;
        std::memcpy(&b, src + 2 * i, sizeof(b));
        dst[i] = BFloat16ToFloat(b);
      }
      return absl::OkStatus();
    case StDtype::kF64:
      for (int64_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, src + 8 * i, sizeof(d));
        dst[i] = static_cast<float>(d);
      }
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError(absl::StrCat(path_, ": tensor '", info.name, "' has dtype ",
                                                     AsAbsl(StDtypeName(info.dtype)),
                                                     ", not a float type"));
  }
}

// ---------------------------------------------------------------------------------------------

namespace {

constexpr std::string_view kSingleFile = "model.safetensors";
constexpr std::string_view kIndexFile = "model.safetensors.index.json";

// A shard name from the index must be a plain file name inside the checkpoint folder.
bool IsPlainFileName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> SafetensorsCheckpoint::Open(
    const std::string& dir) {
  std::unique_ptr<SafetensorsCheckpoint> ckpt(new SafetensorsCheckpoint());
  ckpt->dir_ = dir;
  const std::string index_path = absl::StrCat(dir, "/", AsAbsl(kIndexFile));
  absl::StatusOr<std::unique_ptr<MappedFile>> index_file = MappedFile::Open(index_path);
  if (!index_file.ok() && !absl::IsNotFound(index_file.status())) return index_file.status();

  if (!index_file.ok()) {
    const std::string single_path = absl::StrCat(dir, "/", AsAbsl(kSingleFile));
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> single = SafetensorsFile::Open(single_path);
    if (absl::IsNotFound(single.status())) {
      return absl::NotFoundError(absl::StrCat(dir, ": no ", AsAbsl(kSingleFile), " or ",
                                              AsAbsl(kIndexFile), " in the folder"));
    }
    if (!single.ok()) return single.status();
    ckpt->shards_.push_back(*std::move(single));
    const SafetensorsFile* shard = ckpt->shards_.back().get();
    for (const StTensorInfo& info : shard->tensors()) {
      ckpt->index_.emplace(info.name, Entry{shard, &info});
    }
    return ckpt;
  }

  const char* text = reinterpret_cast<const char*>((*index_file)->data());
  nlohmann::json index = nlohmann::json::parse(text, text + (*index_file)->size(), nullptr, false);
  if (index.is_discarded() || !index.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": not a JSON object"));
  }
  auto weight_map = index.find("weight_map");
  if (weight_map == index.end() || !weight_map->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": missing object \"weight_map\""));
  }
  absl::flat_hash_map<std::string, const SafetensorsFile*> shard_by_name;
  for (auto it = weight_map->begin(); it != weight_map->end(); ++it) {
    if (!it->is_string() || !IsPlainFileName(it->get_ref<const std::string&>())) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": weight_map entry for tensor '", it.key(),
                       "' must be the file name of a shard in the same folder"));
    }
    const std::string& shard_name = it->get_ref<const std::string&>();
    auto found = shard_by_name.find(shard_name);
    if (found == shard_by_name.end()) {
      CTXMEM_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> shard,
                              SafetensorsFile::Open(absl::StrCat(dir, "/", shard_name)));
      ckpt->shards_.push_back(std::move(shard));
      found = shard_by_name.emplace(shard_name, ckpt->shards_.back().get()).first;
    }
    const StTensorInfo* info = found->second->Find(it.key());
    if (info == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(index_path, ": weight_map puts tensor '",
                                                     it.key(), "' in ", shard_name,
                                                     ", which has no such tensor"));
    }
    ckpt->index_.emplace(it.key(), Entry{found->second, info});
  }
  return ckpt;
}

SafetensorsCheckpoint::Entry SafetensorsCheckpoint::Find(std::string_view name) const {
  auto it = index_.find(AsAbsl(name));
  return it == index_.end() ? Entry{} : it->second;
}

absl::StatusOr<std::vector<float>> SafetensorsCheckpoint::ReadF32(
    std::string_view name, std::vector<int64_t>* shape) const {
  const Entry entry = Find(name);
  if (entry.file == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(dir_, ": no tensor '", AsAbsl(name), "' in the checkpoint"));
  }
  std::vector<float> out(static_cast<size_t>(entry.info->n_elements));
  CTXMEM_RETURN_IF_ERROR(entry.file->ReadF32(*entry.info, out.data()));
  if (shape != nullptr) *shape = entry.info->shape;
  return out;
}

std::vector<std::string> SafetensorsCheckpoint::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(index_.size());
  for (const auto& [name, entry] : index_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace ctxmem::weights
