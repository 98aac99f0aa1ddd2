#pragma once
// KIVI quantization of one KV tensor (Liu et al. 2024, "KIVI"): asymmetric min/max integer
// codes per group, keys per channel (a group is group_size consecutive tokens of one channel),
// values per token (a group is group_size consecutive channels of one token). Codes are
// unsigned: x ≈ code * scale + zero, code in [0, 2^bits - 1]; scale and zero are fp16 (what
// the blob stores), and codes are computed from the fp16-rounded scale and zero, so
// Dequantize(Quantize(x)) is exactly what a reader of the blob gets. int4 codes are packed
// two per byte along the last dim (even index in the low nibble).
// Thread-safety: free functions, thread-safe.

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/compress/kv_format.h"
#include "common/compress/memory.h"

namespace ctxmem::compress {

// Which axis a group runs along (KIVI: keys per channel, values per token).
enum class KiviGroupAxis {
  kTokens,    // keys: scale/zero [n_kv_heads, ceil(len / G), head_dim]
  kChannels,  // values: scale/zero [n_kv_heads, len, ceil(head_dim / G)]
};

struct QuantizedTensor {
  // uint8 codes: int8 [n_kv_heads, len, head_dim]; int4 [n_kv_heads, len, ceil(head_dim / 2)]
  at::Tensor codes;
  at::Tensor scale;  // fp16, shape per KiviGroupAxis
  at::Tensor zero;   // fp16, same shape: the group minimum
};

// Shape of scale/zero for `x` [n_kv_heads, len, head_dim] (G clamped to head_dim for kChannels).
std::vector<int64_t> KiviScaleShape(int64_t n_kv_heads, int64_t len, int64_t head_dim,
                                    int64_t group_size, KiviGroupAxis axis);
// Shape of the codes of `x` [n_kv_heads, len, head_dim] for `dtype` (int8 or int4).
std::vector<int64_t> KiviCodeShape(int64_t n_kv_heads, int64_t len, int64_t head_dim,
                                   KvDtype dtype);

// Quantizes `x` [n_kv_heads, len >= 1, head_dim >= 1] (any float dtype, any device; the result
// is on the CPU). InvalidArgument for a format that is not int8/int4, a bad group size, a
// tensor of another rank, or values whose scale or zero do not fit fp16 (|x| > 65504 or NaN).
absl::StatusOr<QuantizedTensor> KiviQuantize(const at::Tensor& x, const KvFormat& format,
                                             KiviGroupAxis axis);

// The fp32 values [n_kv_heads, len, head_dim] the codes stand for (CPU). InvalidArgument when
// the shapes of codes, scale and zero do not fit each other, len and head_dim.
absl::StatusOr<at::Tensor> KiviDequantize(const QuantizedTensor& q, const KvFormat& format,
                                          KiviGroupAxis axis, int64_t len, int64_t head_dim);

// Every layer's k and v replaced by Dequantize(Quantize(.)) in the model dtype and on the
// device they had (keys per channel, values per token): what a decoder reads back from a blob
// of `format`. Float formats round-trip through their dtype. src, rank and counts unchanged.
absl::StatusOr<Memory> RoundTripMemory(const Memory& memory, const KvFormat& format);

}  // namespace ctxmem::compress
