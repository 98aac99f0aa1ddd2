#include "common/compress/blob_tensor_table.h"

#include <ATen/ATen.h>

#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/model/torch_call.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace ctxmem::compress {

using weights::StDtype;

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<at::ScalarType> TorchTypeOf(StDtype dtype) {
  switch (dtype) {
    case StDtype::kF32:
      return at::kFloat;
    case StDtype::kF16:
      return at::kHalf;
    case StDtype::kBF16:
      return at::kBFloat16;
    case StDtype::kI64:
      return at::kLong;
    case StDtype::kI8:
      return at::kChar;
    case StDtype::kI32:
      return at::kInt;
    case StDtype::kU8:
      return at::kByte;
    default:
      return absl::DataLossError(absl::StrCat(
          "blob tensor dtype ", AsAbsl(weights::StDtypeName(dtype)), " is not a memory dtype"));
  }
}

absl::StatusOr<at::Tensor> CopyToTorch(const BlobTensorRef& ref) {
  CTXMEM_ASSIGN_OR_RETURN(const at::ScalarType type, TorchTypeOf(ref.dtype));
  at::Tensor out;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("blob tensor", [&] {
    out = at::empty(ref.shape, at::TensorOptions().dtype(type));
    if (ref.n_bytes > 0) std::memcpy(out.data_ptr(), ref.data, ref.n_bytes);
  }));
  return out;
}

absl::StatusOr<BlobTensorRef> NeedTensor(const BlobTensorTable& table, const std::string& name,
                                         StDtype dtype, const std::vector<int64_t>& shape) {
  CTXMEM_ASSIGN_OR_RETURN(BlobTensorRef ref, table(name));
  if (ref.dtype != dtype || ref.shape != shape) {
    return absl::DataLossError(
        absl::StrCat("blob tensor ", name, " is ", AsAbsl(weights::StDtypeName(ref.dtype)), " ",
                     ShapeString(ref.shape), ", its metadata says ",
                     AsAbsl(weights::StDtypeName(dtype)), " ", ShapeString(shape)));
  }
  return ref;
}

absl::StatusOr<BlobTensorTable> TableOfBytes(absl::string_view bytes) {
  if (bytes.size() < 8) return absl::DataLossError("blob is shorter than 8 bytes");
  uint64_t n_header = 0;
  for (int i = 0; i < 8; ++i) {
    n_header |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  }
  if (n_header > bytes.size() - 8) return absl::DataLossError("blob header length past the end");
  auto header = std::make_shared<nlohmann::json>(nlohmann::json::parse(
      bytes.begin() + 8, bytes.begin() + 8 + n_header, nullptr, /*allow_exceptions=*/false));
  if (header->is_discarded() || !header->is_object()) {
    return absl::DataLossError("blob header is not a JSON object");
  }
  const uint8_t* data = reinterpret_cast<const uint8_t*>(bytes.data()) + 8 + n_header;
  const uint64_t data_bytes = bytes.size() - 8 - n_header;
  return BlobTensorTable(
      [header, data, data_bytes](const std::string& name) -> absl::StatusOr<BlobTensorRef> {
        auto it = header->find(name);
        if (it == header->end())
          return absl::DataLossError(absl::StrCat("blob has no tensor ", name));
        const nlohmann::json& t = *it;
        const auto bad = [&] {
          return absl::DataLossError(absl::StrCat("blob tensor ", name, " entry is malformed"));
        };
        if (!t.is_object() || !t.contains("dtype") || !t["dtype"].is_string() ||
            !t.contains("shape") || !t["shape"].is_array() || !t.contains("data_offsets") ||
            !t["data_offsets"].is_array() || t["data_offsets"].size() != 2) {
          return bad();
        }
        BlobTensorRef ref;
        absl::StatusOr<StDtype> dtype = weights::ParseStDtype(t["dtype"].get<std::string>());
        if (!dtype.ok()) return bad();
        ref.dtype = *dtype;
        uint64_t n_elements = 1;
        for (const auto& d : t["shape"]) {
          if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 40)) return bad();
          ref.shape.push_back(d.get<int64_t>());
          n_elements *= d.get<uint64_t>();
          if (n_elements > (uint64_t{1} << 40)) return bad();
        }
        const auto& off = t["data_offsets"];
        if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) return bad();
        const uint64_t begin = off[0].get<uint64_t>();
        const uint64_t end = off[1].get<uint64_t>();
        if (begin > end || end > data_bytes ||
            end - begin != n_elements * static_cast<uint64_t>(weights::StDtypeBytes(ref.dtype))) {
          return bad();
        }
        ref.data = data + begin;
        ref.n_bytes = end - begin;
        return ref;
      });
}

BlobTensorTable TableOfFile(const weights::SafetensorsFile& file) {
  return [&file](const std::string& name) -> absl::StatusOr<BlobTensorRef> {
    const weights::StTensorInfo* info = file.Find(name);
    if (info == nullptr) return absl::DataLossError(absl::StrCat("blob has no tensor ", name));
    return BlobTensorRef{info->dtype, info->shape, file.TensorData(*info), info->n_bytes};
  };
}

}  // namespace ctxmem::compress
