#include "common/compress/kv_quantizer.h"

#include <ATen/ATen.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/model/torch_call.h"
#include "common/status.h"

namespace ctxmem::compress {
namespace {

constexpr double kMaxF16 = 65504.0;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t ChannelGroup(int64_t group_size, int64_t head_dim) {
  return std::min(group_size, head_dim);
}

// `x` [n_kv, len, hd] fp32 padded along dim `dim` to a multiple of g by repeating its last
// slice (so a padded group's min and max are those of its real members).
at::Tensor PadEdge(const at::Tensor& x, int64_t dim, int64_t g) {
  const int64_t n = x.size(dim);
  const int64_t pad = CeilDiv(n, g) * g - n;
  if (pad == 0) return x;
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes[dim] = pad;
  return at::cat({x, x.narrow(dim, n - 1, 1).expand(sizes)}, dim);
}

at::Tensor PadZeros(const at::Tensor& x, int64_t dim, int64_t g) {
  const int64_t n = x.size(dim);
  const int64_t pad = CeilDiv(n, g) * g - n;
  if (pad == 0) return x;
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes[dim] = pad;
  return at::cat({x, at::zeros(sizes, x.options())}, dim);
}

// Grouped view of a padded [n_kv, L, H] tensor: [n_kv, L/g, g, H] (tokens) or
// [n_kv, L, H/g, g] (channels); the group members are on dim 2 or 3.
at::Tensor Grouped(const at::Tensor& x, int64_t g, KiviGroupAxis axis) {
  if (axis == KiviGroupAxis::kTokens) return x.view({x.size(0), x.size(1) / g, g, x.size(2)});
  return x.view({x.size(0), x.size(1), x.size(2) / g, g});
}

int64_t MemberDim(KiviGroupAxis axis) { return axis == KiviGroupAxis::kTokens ? 2 : 3; }

bool IsQuantized(const KvFormat& f) { return f.quantized(); }

}  // namespace

std::vector<int64_t> KiviScaleShape(int64_t n_kv_heads, int64_t len, int64_t head_dim,
                                    int64_t group_size, KiviGroupAxis axis) {
  if (axis == KiviGroupAxis::kTokens) return {n_kv_heads, CeilDiv(len, group_size), head_dim};
  return {n_kv_heads, len, CeilDiv(head_dim, ChannelGroup(group_size, head_dim))};
}

std::vector<int64_t> KiviCodeShape(int64_t n_kv_heads, int64_t len, int64_t head_dim,
                                   KvDtype dtype) {
  return {n_kv_heads, len, dtype == KvDtype::kInt4 ? CeilDiv(head_dim, 2) : head_dim};
}

absl::StatusOr<QuantizedTensor> KiviQuantize(const at::Tensor& x, const KvFormat& format,
                                             KiviGroupAxis axis) {
  if (!IsQuantized(format)) {
    return absl::InvalidArgumentError(absl::StrCat("KiviQuantize needs int8 or int4, not ",
                                                   std::string(KvDtypeLabel(format.dtype))));
  }
  CTXMEM_RETURN_IF_ERROR(format.Validate());
  if (!x.defined() || x.dim() != 3 || x.size(1) < 1 || x.size(2) < 1) {
    return absl::InvalidArgumentError("KiviQuantize needs [n_kv_heads, len >= 1, head_dim >= 1]");
  }
  const int64_t len = x.size(1);
  const int64_t hd = x.size(2);
  const int64_t g =
      axis == KiviGroupAxis::kTokens ? format.group_size : ChannelGroup(format.group_size, hd);
  const int64_t qmax = (int64_t{1} << KvDtypeBits(format.dtype)) - 1;
  QuantizedTensor out;
  bool fits = true;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("kivi quantize", [&] {
    at::Tensor xf = x.to(at::kCPU, at::kFloat).contiguous();  // [n_kv, len, hd]
    const int64_t dim = axis == KiviGroupAxis::kTokens ? 1 : 2;
    at::Tensor grouped = Grouped(PadEdge(xf, dim, g).contiguous(), g, axis);
    const int64_t member = MemberDim(axis);
    at::Tensor lo = grouped.amin(member, /*keepdim=*/true);  // one per group
    at::Tensor hi = grouped.amax(member, /*keepdim=*/true);
    fits = lo.isfinite().all().item<bool>() && hi.isfinite().all().item<bool>() &&
           lo.abs().max().item<double>() <= kMaxF16 && hi.abs().max().item<double>() <= kMaxF16;
    if (!fits) return;
    at::Tensor zero16 = lo.to(at::kHalf);
    at::Tensor scale16 = ((hi - lo) / static_cast<double>(qmax)).to(at::kHalf);
    at::Tensor zero = zero16.to(at::kFloat);
    at::Tensor scale = scale16.to(at::kFloat);
    at::Tensor safe = at::where(scale > 0, scale, at::ones_like(scale));
    at::Tensor codes = ((grouped - zero) / safe).round().clamp(0, static_cast<double>(qmax));
    if (axis == KiviGroupAxis::kTokens) {
      codes = codes.reshape({xf.size(0), -1, hd}).narrow(1, 0, len);
    } else {
      codes = codes.reshape({xf.size(0), len, -1}).narrow(2, 0, hd);
    }
    at::Tensor u8 = codes.to(at::kByte).contiguous();  // [n_kv, len, hd]
    if (format.dtype == KvDtype::kInt4) {
      u8 = PadZeros(u8, 2, 2);
      at::Tensor even = u8.slice(2, 0, u8.size(2), 2);
      at::Tensor odd = u8.slice(2, 1, u8.size(2), 2);
      u8 = at::bitwise_or(even, at::bitwise_left_shift(odd, 4)).contiguous();  // [n_kv, len, hd/2]
    }
    out.codes = u8;
    const std::vector<int64_t> scale_shape = KiviScaleShape(x.size(0), len, hd, g, axis);
    out.scale = scale16.reshape(scale_shape).contiguous();
    out.zero = zero16.reshape(scale_shape).contiguous();
  }));
  if (!fits) {
    return absl::InvalidArgumentError(
        "KV values are not finite or exceed the fp16 range (|x| > 65504) of KIVI scales");
  }
  return out;
}

absl::StatusOr<at::Tensor> KiviDequantize(const QuantizedTensor& q, const KvFormat& format,
                                          KiviGroupAxis axis, int64_t len, int64_t head_dim) {
  if (!IsQuantized(format)) {
    return absl::InvalidArgumentError(absl::StrCat("KiviDequantize needs int8 or int4, not ",
                                                   std::string(KvDtypeLabel(format.dtype))));
  }
  CTXMEM_RETURN_IF_ERROR(format.Validate());
  if (!q.codes.defined() || q.codes.dim() != 3 || len < 1 || head_dim < 1) {
    return absl::InvalidArgumentError("KiviDequantize: codes must be [n_kv_heads, len, *]");
  }
  const int64_t n_kv = q.codes.size(0);
  const std::vector<int64_t> code_shape = KiviCodeShape(n_kv, len, head_dim, format.dtype);
  const std::vector<int64_t> scale_shape =
      KiviScaleShape(n_kv, len, head_dim, format.group_size, axis);
  if (q.codes.sizes().vec() != code_shape || !q.scale.defined() || !q.zero.defined() ||
      q.scale.sizes().vec() != scale_shape || q.zero.sizes().vec() != scale_shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KiviDequantize: codes [", absl::StrJoin(q.codes.sizes(), ", "), "] and scales must be [",
        absl::StrJoin(code_shape, ", "), "] and [", absl::StrJoin(scale_shape, ", "), "]"));
  }
  const int64_t g = axis == KiviGroupAxis::kTokens ? format.group_size
                                                   : ChannelGroup(format.group_size, head_dim);
  at::Tensor out;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("kivi dequantize", [&] {
    at::Tensor codes = q.codes.to(at::kCPU);
    if (format.dtype == KvDtype::kInt4) {
      at::Tensor lo = at::bitwise_and(codes, 15);
      at::Tensor hi = at::bitwise_right_shift(codes, 4);
      codes = at::stack({lo, hi}, -1).view({n_kv, len, -1}).narrow(2, 0, head_dim);
    }
    at::Tensor x = codes.to(at::kFloat).contiguous();  // [n_kv, len, hd]
    const int64_t dim = axis == KiviGroupAxis::kTokens ? 1 : 2;
    at::Tensor grouped = Grouped(PadZeros(x, dim, g).contiguous(), g, axis);
    at::Tensor scale = q.scale.to(at::kCPU, at::kFloat).unsqueeze(MemberDim(axis));
    at::Tensor zero = q.zero.to(at::kCPU, at::kFloat).unsqueeze(MemberDim(axis));
    at::Tensor values = grouped * scale + zero;
    if (axis == KiviGroupAxis::kTokens) {
      out = values.reshape({n_kv, -1, head_dim}).narrow(1, 0, len).contiguous();
    } else {
      out = values.reshape({n_kv, len, -1}).narrow(2, 0, head_dim).contiguous();
    }
  }));
  return out;
}

absl::StatusOr<Memory> RoundTripMemory(const Memory& memory, const KvFormat& format) {
  CTXMEM_RETURN_IF_ERROR(format.Validate());
  Memory out = memory;
  for (LayerMemory& layer : out.layers) {
    if (layer.len() == 0 || !layer.k.defined()) continue;
    const auto type = layer.k.scalar_type();
    const auto device = layer.k.device();
    if (!format.quantized()) {
      const at::ScalarType store = format.dtype == KvDtype::kF32   ? at::kFloat
                                   : format.dtype == KvDtype::kF16 ? at::kHalf
                                                                   : at::kBFloat16;
      CTXMEM_RETURN_IF_ERROR(model::TorchCall("kv round trip", [&] {
        layer.k = layer.k.to(store).to(type);
        layer.v = layer.v.to(store).to(type);
      }));
      continue;
    }
    const int64_t len = layer.k.size(1);
    CTXMEM_ASSIGN_OR_RETURN(QuantizedTensor qk,
                            KiviQuantize(layer.k, format, KiviGroupAxis::kTokens));
    CTXMEM_ASSIGN_OR_RETURN(QuantizedTensor qv,
                            KiviQuantize(layer.v, format, KiviGroupAxis::kChannels));
    CTXMEM_ASSIGN_OR_RETURN(
        at::Tensor k, KiviDequantize(qk, format, KiviGroupAxis::kTokens, len, layer.k.size(2)));
    CTXMEM_ASSIGN_OR_RETURN(
        at::Tensor v, KiviDequantize(qv, format, KiviGroupAxis::kChannels, len, layer.v.size(2)));
    CTXMEM_RETURN_IF_ERROR(model::TorchCall("kv round trip", [&] {
      layer.k = k.to(device, type);
      layer.v = v.to(device, type);
    }));
  }
  return out;
}

}  // namespace ctxmem::compress
