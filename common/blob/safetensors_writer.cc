#include "common/blob/safetensors_writer.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/blob/atomic_file.h"
#include "common/status.h"

namespace ctxmem::blob {
namespace {

constexpr absl::string_view kMetadataKey = "__metadata__";

// Appends `text` (valid UTF-8) as a JSON string: quotes, backslashes and control characters
// escaped, everything else verbatim. Deterministic, so equal inputs give equal headers.
void AppendJsonString(absl::string_view text, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20) {
      out->append("\\u00");
      out->push_back(kHex[u >> 4]);
      out->push_back(kHex[u & 0xF]);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

std::string JsonString(absl::string_view text) {
  std::string out;
  AppendJsonString(text, &out);
  return out;
}

// Element count and byte size of `t`, checked for overflow.
absl::StatusOr<uint64_t> TensorBytes(const RawTensor& t) {
  uint64_t n_elements = 1;
  for (int64_t dim : t.shape) {
    if (dim < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", t.name, "': negative dimension ", dim));
    }
    const uint64_t d = static_cast<uint64_t>(dim);
    if (d != 0 && n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / d) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", t.name, "': element count overflows at dimension ", dim));
    }
    n_elements *= d;
  }
  const uint64_t elem_bytes = static_cast<uint64_t>(weights::StDtypeBytes(t.dtype));
  if (n_elements > std::numeric_limits<uint64_t>::max() / 8 / elem_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", t.name, "': ", n_elements, " elements overflow the byte count"));
  }
  const uint64_t n_bytes = n_elements * elem_bytes;
  if (n_bytes > 0 && t.data == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", t.name, "': data is null but ", n_bytes, " bytes are needed"));
  }
  return n_bytes;
}

}  // namespace

bool IsValidUtf8(absl::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n_cont = 0;
    uint32_t cp = 0;
    uint32_t min_cp = 0;
    if ((c & 0xE0) == 0xC0) {
      n_cont = 1, cp = c & 0x1F, min_cp = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n_cont = 2, cp = c & 0x0F, min_cp = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n_cont = 3, cp = c & 0x07, min_cp = 0x10000;
    } else {
      return false;
    }
    if (end - p <= n_cont) return false;
    for (int i = 1; i <= n_cont; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n_cont + 1;
  }
  return true;
}

absl::StatusOr<SafetensorsLayout> SafetensorsLayout::Build(std::vector<RawTensor> tensors,
                                                           MetadataEntries metadata) {
  SafetensorsLayout layout;
  absl::flat_hash_set<std::string> seen;
  for (const RawTensor& t : tensors) {
    if (t.name.empty() || t.name == kMetadataKey || !IsValidUtf8(t.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor name '", t.name, "' is empty, reserved or not valid UTF-8"));
    }
    if (!seen.insert(t.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate tensor name '", t.name, "'"));
    }
  }
  seen.clear();
  for (const auto& [key, value] : metadata) {
    if (!IsValidUtf8(key) || !IsValidUtf8(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata key '", key, "' or its value is not valid UTF-8"));
    }
    if (!seen.insert(key).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate metadata key '", key, "'"));
    }
  }
  std::stable_sort(tensors.begin(), tensors.end(), [](const RawTensor& a, const RawTensor& b) {
    const int64_t wa = weights::StDtypeBytes(a.dtype);
    const int64_t wb = weights::StDtypeBytes(b.dtype);
    return wa != wb ? wa > wb : a.name < b.name;
  });

  std::string json = "{";
  if (!metadata.empty()) {
    AppendJsonString(kMetadataKey, &json);
    json += ":{";
    for (size_t i = 0; i < metadata.size(); ++i) {
      if (i > 0) json += ",";
      AppendJsonString(metadata[i].first, &json);
      json += ":";
      const uint64_t offset = 8 + json.size();
      AppendJsonString(metadata[i].second, &json);
      layout.value_spans_.push_back({metadata[i].first, offset, 8 + json.size() - offset});
    }
    json += "}";
  }
  uint64_t data_bytes = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const RawTensor& t = tensors[i];
    CTXMEM_ASSIGN_OR_RETURN(const uint64_t n_bytes, TensorBytes(t));
    if (json.size() > 1) json += ",";
    AppendJsonString(t.name, &json);
    json += ":{\"dtype\":";
    AppendJsonString(AsAbsl(weights::StDtypeName(t.dtype)), &json);
    json += ",\"shape\":[";
    for (size_t d = 0; d < t.shape.size(); ++d) {
      absl::StrAppend(&json, d > 0 ? "," : "", t.shape[d]);
    }
    absl::StrAppend(&json, "],\"data_offsets\":[", data_bytes, ",", data_bytes + n_bytes, "]}");
    data_bytes += n_bytes;
    layout.tensor_n_bytes_.push_back(n_bytes);
    if (json.size() > kMaxHeaderBytes) break;
  }
  json += "}";
  json.append((8 - json.size() % 8) % 8, ' ');
  if (json.size() > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "safetensors header of ", json.size(), "+ bytes exceeds the limit of ", kMaxHeaderBytes));
  }
  layout.header_.resize(8);
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) layout.header_[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  layout.header_ += json;
  layout.tensors_ = std::move(tensors);
  layout.data_bytes_ = data_bytes;
  return layout;
}

int64_t SafetensorsLayout::MetadataValueOffset(absl::string_view key) const {
  for (const ValueSpan& span : value_spans_) {
    if (span.key == key) return static_cast<int64_t>(span.offset + 1);
  }
  return -1;
}

absl::Status SafetensorsLayout::ReplaceMetadataValue(absl::string_view key,
                                                     absl::string_view value) {
  for (const ValueSpan& span : value_spans_) {
    if (span.key != key) continue;
    if (!IsValidUtf8(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("new value of metadata key '", key, "' is not valid UTF-8"));
    }
    const std::string json = JsonString(value);
    if (json.size() != span.n_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("new value of metadata key '", key,
                                                     "' serializes to ", json.size(),
                                                     " bytes, the header holds ", span.n_bytes));
    }
    header_.replace(span.offset, span.n_bytes, json);
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("no metadata key '", key, "' in the layout"));
}

absl::Status SafetensorsLayout::AppendTo(AtomicFile* file) const {
  CTXMEM_RETURN_IF_ERROR(file->Append(header_));
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const auto* data = static_cast<const char*>(tensors_[i].data);
    CTXMEM_RETURN_IF_ERROR(file->Append(absl::string_view(data, tensor_n_bytes_[i])));
  }
  return absl::OkStatus();
}

absl::Status SafetensorsLayout::WriteToFile(const std::string& path) const {
  CTXMEM_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> file, AtomicFile::Create(path));
  CTXMEM_RETURN_IF_ERROR(AppendTo(file.get()));
  return file->Commit();
}

std::string SafetensorsLayout::ToBytes() const {
  std::string bytes;
  bytes.reserve(total_bytes());
  bytes += header_;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (tensor_n_bytes_[i] > 0) {
      bytes.append(static_cast<const char*>(tensors_[i].data), tensor_n_bytes_[i]);
    }
  }
  return bytes;
}

}  // namespace ctxmem::blob
