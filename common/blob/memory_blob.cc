#include "common/blob/memory_blob.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/blob/sha256.h"
#include "common/status.h"
#include "common/weights/mapped_file.h"
#include "nlohmann/json.hpp"

namespace ctxmem::blob {
namespace {

using weights::StDtype;

// One entry of a tensor table, from the writer's input or a parsed header.
struct TensorDesc {
  StDtype dtype = StDtype::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // data-section offsets [begin, end); parsed headers only
  uint64_t end = 0;
};
using TensorTable = std::map<std::string, TensorDesc>;

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// Checks the per-layer tensors against the metadata (LayoutBlob's contract). InvalidArgument.
absl::Status CheckLayerTensors(const TensorTable& table, const BlobMetadata& m) {
  const bool int8 = m.quantization == BlobQuantization::kInt8PerChannel;
  auto find = [&table](const std::string& name, StDtype dtype, size_t rank,
                       const TensorDesc** out) -> absl::Status {
    auto it = table.find(name);
    if (it == table.end()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' is missing"));
    }
    if (it->second.dtype != dtype || (rank > 0 && it->second.shape.size() != rank) ||
        it->second.shape.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", name, "' is ", AsAbsl(weights::StDtypeName(it->second.dtype)), " ",
          ShapeString(it->second.shape), ", expected ", AsAbsl(weights::StDtypeName(dtype)),
          rank > 0 ? absl::StrCat(" of rank ", rank) : std::string(" of rank >= 1")));
    }
    *out = &it->second;
    return absl::OkStatus();
  };
  for (int64_t i = 0; i < m.n_layers(); ++i) {
    const TensorDesc* k = nullptr;
    const TensorDesc* v = nullptr;
    const TensorDesc* src = nullptr;
    CTXMEM_RETURN_IF_ERROR(find(KeyTensorName(i), m.kv_dtype, 3, &k));
    CTXMEM_RETURN_IF_ERROR(find(ValueTensorName(i), m.kv_dtype, 3, &v));
    // Version 2 may store src as I32 (its values are stream indices, < 2^31 tokens).
    const bool src_i32 = m.format_version >= 2 && table.count(SrcTensorName(i)) > 0 &&
                         table.at(SrcTensorName(i)).dtype == StDtype::kI32;
    CTXMEM_RETURN_IF_ERROR(
        find(SrcTensorName(i), src_i32 ? StDtype::kI32 : StDtype::kI64, 0, &src));
    if (k->shape[1] != m.n_kept[i] || v->shape[1] != m.n_kept[i] || k->shape[0] != v->shape[0] ||
        src->shape.back() != m.n_kept[i]) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer ", i, ": k ", ShapeString(k->shape), ", v ", ShapeString(v->shape),
                       " and src ", ShapeString(src->shape), " do not hold n_kept=", m.n_kept[i],
                       " entries for the same kv heads"));
    }
    if (IsKivi(m.quantization)) {
      const TensorDesc* t[4] = {};
      const std::string names[4] = {KeyScaleTensorName(i), KeyZeroTensorName(i),
                                    ValueScaleTensorName(i), ValueZeroTensorName(i)};
      for (int j = 0; j < 4; ++j) CTXMEM_RETURN_IF_ERROR(find(names[j], StDtype::kF16, 3, &t[j]));
      const int64_t groups_k = m.n_kept[i] == 0 ? 0 : (m.n_kept[i] - 1) / m.kv_group_size + 1;
      if (t[0]->shape != t[1]->shape || t[2]->shape != t[3]->shape ||
          t[0]->shape[0] != k->shape[0] || t[0]->shape[1] != groups_k ||
          t[2]->shape[0] != v->shape[0] || t[2]->shape[1] != m.n_kept[i]) {
        return absl::InvalidArgumentError(
            absl::StrCat("layer ", i, ": KIVI scales/zeros ", ShapeString(t[0]->shape), " / ",
                         ShapeString(t[2]->shape), " do not fit k ", ShapeString(k->shape), " / v ",
                         ShapeString(v->shape), " with kv_group_size=", m.kv_group_size));
      }
      continue;
    }
    if (!int8) continue;
    const TensorDesc* k_scale = nullptr;
    const TensorDesc* v_scale = nullptr;
    CTXMEM_RETURN_IF_ERROR(find(KeyScaleTensorName(i), StDtype::kF32, 3, &k_scale));
    CTXMEM_RETURN_IF_ERROR(find(ValueScaleTensorName(i), StDtype::kF32, 3, &v_scale));
    if (k_scale->shape != std::vector<int64_t>{k->shape[0], 1, k->shape[2]} ||
        v_scale->shape != std::vector<int64_t>{v->shape[0], 1, v->shape[2]}) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer ", i, ": scales ", ShapeString(k_scale->shape), " / ", ShapeString(v_scale->shape),
          " are not per channel of k ", ShapeString(k->shape), " / v ", ShapeString(v->shape)));
    }
  }
  return absl::OkStatus();
}

// Parses the tensor entries of a (checksum-verified) header. Every extent must match its
// dtype and shape, and the extents must tile [0, data_bytes) without gaps, as the safetensors
// reference requires. DataLoss naming the tensor otherwise.
absl::StatusOr<TensorTable> ParseTensorTable(const nlohmann::json& header, uint64_t data_bytes) {
  TensorTable table;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const nlohmann::json& e = *it;
    auto bad = [&it](absl::string_view why) {
      return absl::DataLossError(absl::StrCat("blob tensor '", it.key(), "': ", why));
    };
    if (!e.is_object() || !e.contains("dtype") || !e["dtype"].is_string() || !e.contains("shape") ||
        !e["shape"].is_array() || !e.contains("data_offsets") || !e["data_offsets"].is_array() ||
        e["data_offsets"].size() != 2 || !e["data_offsets"][0].is_number_unsigned() ||
        !e["data_offsets"][1].is_number_unsigned()) {
      return bad("entry needs string dtype, array shape and two unsigned data_offsets");
    }
    TensorDesc desc;
    absl::StatusOr<StDtype> dtype = weights::ParseStDtype(e["dtype"].get<std::string>());
    if (!dtype.ok()) return bad(dtype.status().message());
    desc.dtype = *dtype;
    uint64_t n_elements = 1;
    for (const nlohmann::json& dim : e["shape"]) {
      if (!dim.is_number_unsigned()) return bad("shape entries must be non-negative integers");
      const uint64_t d = dim.get<uint64_t>();
      if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (d != 0 && n_elements > data_bytes / d)) {
        return bad(
            absl::StrCat("dimension ", d, " does not fit the ", data_bytes, "-byte data section"));
      }
      n_elements *= d;
      desc.shape.push_back(static_cast<int64_t>(d));
    }
    desc.begin = e["data_offsets"][0].get<uint64_t>();
    desc.end = e["data_offsets"][1].get<uint64_t>();
    const uint64_t width = static_cast<uint64_t>(weights::StDtypeBytes(desc.dtype));
    if (desc.end < desc.begin || desc.end > data_bytes || n_elements > data_bytes / width ||
        desc.end - desc.begin != n_elements * width) {
      return bad(absl::StrCat(
          "data_offsets [", desc.begin, ", ", desc.end, ") do not hold ", ShapeString(desc.shape),
          " of ", AsAbsl(weights::StDtypeName(desc.dtype)), " inside ", data_bytes, " data bytes"));
    }
    table.emplace(it.key(), std::move(desc));
  }
  std::vector<std::pair<uint64_t, uint64_t>> extents;
  for (const auto& [name, desc] : table) extents.emplace_back(desc.begin, desc.end);
  std::sort(extents.begin(), extents.end());
  uint64_t next = 0;
  for (const auto& [begin, end] : extents) {
    if (begin != next) {
      return absl::DataLossError(absl::StrCat("blob tensor extents leave a gap or overlap at byte ",
                                              std::min(begin, next), " of the data section"));
    }
    next = end;
  }
  if (next != data_bytes) {
    return absl::DataLossError(
        absl::StrCat("blob tensors cover ", next, " of ", data_bytes, " data bytes"));
  }
  return table;
}

absl::StatusOr<std::string> HashHeader(absl::string_view header) {
  static const std::string kZeros(kSha256HexChars, '0');
  CTXMEM_ASSIGN_OR_RETURN(Sha256 sha, Sha256::Create());
  CTXMEM_RETURN_IF_ERROR(sha.Update(header.substr(0, kHeaderShaOffset)));
  CTXMEM_RETURN_IF_ERROR(sha.Update(kZeros));
  CTXMEM_RETURN_IF_ERROR(sha.Update(header.substr(kHeaderShaOffset + kSha256HexChars)));
  return sha.FinishHex();
}

}  // namespace

absl::Status CheckExpectations(const BlobMetadata& metadata, const BlobExpectations& expect) {
  if (!expect.model_fingerprint.empty() && metadata.model_fingerprint != expect.model_fingerprint) {
    return absl::FailedPreconditionError(
        absl::StrCat("blob was made with model '", metadata.model_fingerprint,
                     "' but this server runs '", expect.model_fingerprint, "'"));
  }
  if (!expect.tokenizer_fingerprint.empty() &&
      metadata.tokenizer_fingerprint != expect.tokenizer_fingerprint) {
    return absl::FailedPreconditionError(
        absl::StrCat("blob was made with tokenizer '", metadata.tokenizer_fingerprint,
                     "' but this server runs '", expect.tokenizer_fingerprint, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SafetensorsLayout> LayoutBlob(std::vector<RawTensor> tensors,
                                             const BlobMetadata& metadata) {
  CTXMEM_RETURN_IF_ERROR(metadata.Validate());
  TensorTable table;
  for (const RawTensor& t : tensors) table[t.name] = TensorDesc{t.dtype, t.shape};
  CTXMEM_RETURN_IF_ERROR(CheckLayerTensors(table, metadata));
  CTXMEM_ASSIGN_OR_RETURN(
      SafetensorsLayout layout,
      SafetensorsLayout::Build(std::move(tensors), ToMetadataEntries(metadata)));
  if (layout.MetadataValueOffset(kKeyHeaderSha256) != static_cast<int64_t>(kHeaderShaOffset) ||
      layout.MetadataValueOffset(kKeyDataSha256) != static_cast<int64_t>(kDataShaOffset)) {
    return absl::InternalError("blob header checksums are not at their fixed offsets");
  }
  CTXMEM_ASSIGN_OR_RETURN(Sha256 data_sha, Sha256::Create());
  for (size_t i = 0; i < layout.tensors().size(); ++i) {
    CTXMEM_RETURN_IF_ERROR(data_sha.Update(layout.tensors()[i].data, layout.tensor_n_bytes(i)));
  }
  CTXMEM_ASSIGN_OR_RETURN(const std::string data_hex, data_sha.FinishHex());
  CTXMEM_RETURN_IF_ERROR(layout.ReplaceMetadataValue(kKeyDataSha256, data_hex));
  CTXMEM_ASSIGN_OR_RETURN(const std::string header_hex, HashHeader(layout.header()));
  CTXMEM_RETURN_IF_ERROR(layout.ReplaceMetadataValue(kKeyHeaderSha256, header_hex));
  return layout;
}

absl::StatusOr<std::string> SealBlob(std::vector<RawTensor> tensors, const BlobMetadata& metadata) {
  CTXMEM_ASSIGN_OR_RETURN(const SafetensorsLayout layout, LayoutBlob(std::move(tensors), metadata));
  return layout.ToBytes();
}

absl::StatusOr<uint64_t> SealBlobToFile(std::vector<RawTensor> tensors,
                                        const BlobMetadata& metadata, const std::string& path) {
  CTXMEM_ASSIGN_OR_RETURN(const SafetensorsLayout layout, LayoutBlob(std::move(tensors), metadata));
  CTXMEM_RETURN_IF_ERROR(layout.WriteToFile(path));
  return layout.total_bytes();
}

absl::StatusOr<BlobInfo> VerifyBlob(absl::string_view bytes, const BlobExpectations& expect) {
  const uint64_t size = bytes.size();
  if (size < kDataShaOffset + kSha256HexChars + 1) {
    return absl::DataLossError(
        absl::StrCat("blob is truncated: ", size, " bytes cannot hold the fixed header prefix"));
  }
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  if (n > size - 8 || n > SafetensorsLayout::kMaxHeaderBytes ||
      8 + n < kDataShaOffset + kSha256HexChars + 1) {
    return absl::DataLossError(absl::StrCat("blob header length ", n, " does not fit the ", size,
                                            "-byte file (truncated or corrupt)"));
  }
  const absl::string_view header = bytes.substr(0, 8 + n);
  const absl::string_view stored_header_hex = bytes.substr(kHeaderShaOffset, kSha256HexChars);
  const absl::string_view stored_data_hex = bytes.substr(kDataShaOffset, kSha256HexChars);
  if (bytes.substr(8, kBlobHeaderPrefix.size()) != kBlobHeaderPrefix ||
      bytes.substr(kHeaderShaOffset + kSha256HexChars, kBlobHeaderInfix.size()) !=
          kBlobHeaderInfix ||
      bytes[kDataShaOffset + kSha256HexChars] != '"' || !IsSha256Hex(stored_header_hex) ||
      !IsSha256Hex(stored_data_hex)) {
    return absl::DataLossError(
        "not a ctxmem memory blob or its header is corrupt: the fixed prefix with the magic and "
        "the two SHA-256 checksums is not intact");
  }
  CTXMEM_ASSIGN_OR_RETURN(const std::string header_hex, HashHeader(header));
  if (header_hex != stored_header_hex) {
    return absl::DataLossError(absl::StrCat("blob header checksum mismatch: stored ",
                                            stored_header_hex, ", computed ", header_hex));
  }
  CTXMEM_ASSIGN_OR_RETURN(const std::string data_hex, Sha256Hex(bytes.substr(8 + n)));
  if (data_hex != stored_data_hex) {
    return absl::DataLossError(absl::StrCat("blob data checksum mismatch over ", size - 8 - n,
                                            " bytes: stored ", stored_data_hex, ", computed ",
                                            data_hex));
  }

  // Checksums match: the rest is parsed from bytes the writer produced.
  const nlohmann::json json = nlohmann::json::parse(
      header.data() + 8, header.data() + header.size(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object() || !json.contains("__metadata__") ||
      !json["__metadata__"].is_object()) {
    return absl::DataLossError("blob header is not a JSON object with a __metadata__ object");
  }
  std::map<std::string, std::string> entries;
  for (auto it = json["__metadata__"].begin(); it != json["__metadata__"].end(); ++it) {
    if (!it->is_string()) {
      return absl::DataLossError(
          absl::StrCat("blob metadata value of '", it.key(), "' is not a string"));
    }
    entries[it.key()] = it->get<std::string>();
  }
  BlobInfo info;
  CTXMEM_ASSIGN_OR_RETURN(info.metadata, ParseBlobMetadata(entries));
  CTXMEM_ASSIGN_OR_RETURN(const TensorTable table, ParseTensorTable(json, size - 8 - n));
  const absl::Status layers = CheckLayerTensors(table, info.metadata);
  if (!layers.ok()) {
    return absl::DataLossError(
        absl::StrCat("blob tensors do not fit its metadata: ", layers.message()));
  }
  CTXMEM_RETURN_IF_ERROR(CheckExpectations(info.metadata, expect));
  info.header_sha256 = header_hex;
  info.data_sha256 = data_hex;
  info.n_bytes = size;
  info.n_header_bytes = 8 + n;
  return info;
}

absl::StatusOr<std::unique_ptr<MemoryBlob>> MemoryBlob::Open(const std::string& path,
                                                             const BlobExpectations& expect) {
  BlobInfo info;
  {
    CTXMEM_ASSIGN_OR_RETURN(std::unique_ptr<weights::MappedFile> mapped,
                            weights::MappedFile::Open(path));
    const absl::string_view bytes(reinterpret_cast<const char*>(mapped->data()), mapped->size());
    absl::StatusOr<BlobInfo> verified = VerifyBlob(bytes, expect);
    if (!verified.ok()) return WithContext(verified.status(), path);
    info = *std::move(verified);
  }
  absl::StatusOr<std::unique_ptr<weights::SafetensorsFile>> file =
      weights::SafetensorsFile::Open(path);
  if (!file.ok()) {
    return absl::DataLossError(absl::StrCat(
        path, ": verified blob does not open as safetensors: ", file.status().message()));
  }
  const auto& entries = (*file)->metadata();
  auto it = entries.find(std::string(kKeyHeaderSha256));
  if (it == entries.end() || it->second != info.header_sha256) {
    return absl::DataLossError(
        absl::StrCat(path, ": the file changed while it was being opened; retry"));
  }
  return std::unique_ptr<MemoryBlob>(new MemoryBlob(std::move(info), *std::move(file)));
}

}  // namespace ctxmem::blob
