#include "common/compress/kivi_blob_codec.h"

#include <ATen/ATen.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/blob/blob_id.h"
#include "common/model/torch_call.h"
#include "common/status.h"

namespace ctxmem::compress {

using weights::StDtype;

absl::StatusOr<EncodedMemory> EncodeKiviMemory(const Memory& memory, const KvFormat& format,
                                               blob::BlobMetadata base) {
  if (memory.layers.empty()) return absl::InvalidArgumentError("memory has no layers");
  EncodedMemory out;
  out.metadata = std::move(base);
  out.metadata.format_version = 2;
  out.metadata.n_original_tokens = memory.n_tokens;
  out.metadata.n_sinks = memory.n_sinks;
  out.metadata.fused_entries = memory.fused;
  out.metadata.kv_dtype = StDtype::kU8;
  out.metadata.quantization = format.dtype == KvDtype::kInt4 ? blob::BlobQuantization::kKiviInt4
                                                             : blob::BlobQuantization::kKiviInt8;
  out.metadata.kv_group_size = format.group_size;
  out.metadata.n_kept.clear();
  const int64_t len = memory.len();
  if (len == 0) return absl::InvalidArgumentError("a quantized memory needs at least one entry");
  out.storage.reserve(memory.layers.size() * 7);
  for (size_t i = 0; i < memory.layers.size(); ++i) {
    const LayerMemory& layer = memory.layers[i];
    const auto li = static_cast<int64_t>(i);
    if (layer.len() != len || !layer.k.defined() || !layer.v.defined() || layer.k.dim() != 3 ||
        layer.v.dim() != 3 || layer.k.size(1) != len || layer.v.size(1) != len ||
        layer.src.size(0) != layer.k.size(0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("memory layer ", i, " must hold k, v [n_kv_heads, ", len,
                       ", head_dim] and src [n_kv_heads, ", len, "] like layer 0"));
    }
    out.metadata.n_kept.push_back(len);
    CTXMEM_ASSIGN_OR_RETURN(QuantizedTensor qk,
                            KiviQuantize(layer.k, format, KiviGroupAxis::kTokens));
    CTXMEM_ASSIGN_OR_RETURN(QuantizedTensor qv,
                            KiviQuantize(layer.v, format, KiviGroupAxis::kChannels));
    at::Tensor src;
    CTXMEM_RETURN_IF_ERROR(model::TorchCall("encode src", [&] {
      src = layer.src.to(at::kCPU).to(at::kInt).contiguous();  // [n_kv_heads, len]
    }));
    out.Add(blob::KeyTensorName(li), StDtype::kU8, qk.codes);
    out.Add(blob::KeyScaleTensorName(li), StDtype::kF16, qk.scale);
    out.Add(blob::KeyZeroTensorName(li), StDtype::kF16, qk.zero);
    out.Add(blob::ValueTensorName(li), StDtype::kU8, qv.codes);
    out.Add(blob::ValueScaleTensorName(li), StDtype::kF16, qv.scale);
    out.Add(blob::ValueZeroTensorName(li), StDtype::kF16, qv.zero);
    out.Add(blob::SrcTensorName(li), StDtype::kI32, src);
  }
  return out;
}

absl::StatusOr<at::Tensor> DecodeKiviTensor(const BlobTensorTable& table,
                                            const std::string& codes_name,
                                            const std::string& scale_name,
                                            const std::string& zero_name, const KvFormat& format,
                                            KiviGroupAxis axis, int64_t n_kv, int64_t len,
                                            int64_t head_dim) {
  CTXMEM_ASSIGN_OR_RETURN(BlobTensorRef codes_ref,
                          NeedTensor(table, codes_name, StDtype::kU8,
                                     KiviCodeShape(n_kv, len, head_dim, format.dtype)));
  const std::vector<int64_t> scale_shape =
      KiviScaleShape(n_kv, len, head_dim, format.group_size, axis);
  CTXMEM_ASSIGN_OR_RETURN(BlobTensorRef scale_ref,
                          NeedTensor(table, scale_name, StDtype::kF16, scale_shape));
  CTXMEM_ASSIGN_OR_RETURN(BlobTensorRef zero_ref,
                          NeedTensor(table, zero_name, StDtype::kF16, scale_shape));
  QuantizedTensor q;
  CTXMEM_ASSIGN_OR_RETURN(q.codes, CopyToTorch(codes_ref));
  CTXMEM_ASSIGN_OR_RETURN(q.scale, CopyToTorch(scale_ref));
  CTXMEM_ASSIGN_OR_RETURN(q.zero, CopyToTorch(zero_ref));
  absl::StatusOr<at::Tensor> out = KiviDequantize(q, format, axis, len, head_dim);
  if (!out.ok()) return absl::DataLossError(absl::StrCat("blob ", out.status().message()));
  return out;
}

}  // namespace ctxmem::compress
