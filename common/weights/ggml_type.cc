#include "common/weights/ggml_type.h"

#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/weights/float16.h"

// Block layouts (little-endian; "f16" is an IEEE binary16 scale). Legacy quants hold 32 values
// per block, K-quants 256 values (a "super-block") split into sub-blocks with their own scales.
//
//   q4_0  18 B: d f16 | qs[16]             v[j] = d * (nib - 8); low nibbles are v[0..15],
//                                          high nibbles v[16..31]
//   q4_1  20 B: d f16 | m f16 | qs[16]     v = d * nib + m
//   q5_0  22 B: d f16 | qh u32 | qs[16]    5-bit q = nib | bit j of qh << 4; v = d * (q - 16)
//   q5_1  24 B: d f16 | m f16 | qh | qs    v = d * q + m
//   q8_0  34 B: d f16 | qs[32] i8          v = d * q
//   q8_1  36 B: d f16 | s f16 | qs[32] i8  v = d * q (s = d * sum(q) is only used by dot products)
//   q2_K  84 B: scales[16] | qs[64] | d f16 | dmin f16
//   q3_K 110 B: hmask[32] | qs[64] | scales[12] | d f16
//   q4_K 144 B: d f16 | dmin f16 | scales[12] | qs[128]
//   q5_K 176 B: d f16 | dmin f16 | scales[12] | qh[32] | qs[128]
//   q6_K 210 B: ql[128] | qh[64] | scales[16] i8 | d f16
//   q8_K 292 B: d f32 | qs[256] i8 | bsums[16] i16 (bsums only serve dot products)
// The K-quant bit packing is spelled out next to each Dequantize* function below. The float
// operation order follows the reference dequantizers (ggml-quants.c / gguf-py quants.py) so the
// results are bit-identical to them on hosts without fused multiply-add contraction.

namespace ctxmem::weights {
namespace {

constexpr int64_t kQk = 32;    // values per legacy block
constexpr int64_t kQkK = 256;  // values per K-quant super-block

// absl::string_view is not std::string_view in this build (ABSL_OPTION_USE_STD_STRING_VIEW=0).
inline absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

struct TypeEntry {
  uint32_t id;
  GgmlTypeTraits traits;
};

// The single name table of GgmlType (STYLE rule 37).
constexpr TypeEntry kTypes[] = {
    {0, {"f32", 1, 4, true}},        {1, {"f16", 1, 2, true}},
    {2, {"q4_0", kQk, 18, true}},    {3, {"q4_1", kQk, 20, true}},
    {6, {"q5_0", kQk, 22, true}},    {7, {"q5_1", kQk, 24, true}},
    {8, {"q8_0", kQk, 34, true}},    {9, {"q8_1", kQk, 36, true}},
    {10, {"q2_K", kQkK, 84, true}},  {11, {"q3_K", kQkK, 110, true}},
    {12, {"q4_K", kQkK, 144, true}}, {13, {"q5_K", kQkK, 176, true}},
    {14, {"q6_K", kQkK, 210, true}}, {15, {"q8_K", kQkK, 292, true}},
    {30, {"bf16", 1, 2, true}},
};

const GgmlTypeTraits* FindTraits(uint32_t id) {
  for (const TypeEntry& entry : kTypes) {
    if (entry.id == id) return &entry.traits;
  }
  return nullptr;
}

inline uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline float LoadF16(const uint8_t* p) { return HalfToFloat(LoadU16(p)); }

// Each function below decodes one block at `b` into `y` (block_elems values).

void DequantizeQ4_0(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 0x0F) - 8);
    y[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

void DequantizeQ4_1(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const float m = LoadF16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(qs[j] & 0x0F) + m;
    y[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

// Fifth bits: bit j of qh belongs to value j (0..31).
void DequantizeQ5_0(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const uint32_t qh = LoadU32(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = d * static_cast<float>(lo - 16);
    y[j + 16] = d * static_cast<float>(hi - 16);
  }
}

void DequantizeQ5_1(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const float m = LoadF16(b + 2);
  const uint32_t qh = LoadU32(b + 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = d * static_cast<float>(lo) + m;
    y[j + 16] = d * static_cast<float>(hi) + m;
  }
}

// `qs_offset` skips the f16 scale (q8_0) or scale + sum (q8_1).
void DequantizeQ8(const uint8_t* b, int qs_offset, float* y) {
  const float d = LoadF16(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + qs_offset);
  for (int j = 0; j < kQk; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

// q2_K: 16 sub-blocks of 16 values; scales[i] = sub-scale (low nibble) | sub-min (high nibble).
// Value e = 128 * h + 32 * s + l (h < 2, s < 4, l < 32) is bits 2s..2s+1 of qs[32 * h + l] and
// belongs to sub-block e / 16.
void DequantizeQ2_K(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = LoadF16(b + 80);
  const float dmin = LoadF16(b + 82);
  for (int e = 0; e < kQkK; ++e) {
    const int h = e / 128, s = (e / 32) % 4, l = e % 32;
    const uint8_t sc = scales[e / 16];
    const float dl = d * static_cast<float>(sc & 0x0F);
    const float ml = dmin * static_cast<float>(sc >> 4);
    const int q = (qs[32 * h + l] >> (2 * s)) & 3;
    y[e] = dl * static_cast<float>(q) - ml;
  }
}

// 6-bit sub-block scales of q3_K, packed in 12 bytes: scale i (i < 16) has its low 4 bits in
// byte i % 8 (low nibble for i < 8, high nibble otherwise) and its top 2 bits in byte
// 8 + i % 4 at bit 2 * (i / 4). Stored with a +32 bias.
int Q3KScale(const uint8_t* scales, int i) {
  const int lo = (i < 8 ? scales[i] : scales[i - 8] >> 4) & 0x0F;
  const int hi = (scales[8 + i % 4] >> (2 * (i / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}

// q3_K: 16 sub-blocks of 16. Value e: low 2 bits as in q2_K (qs[32 * h + l] >> 2s), high bit is
// bit e / 32 of hmask[e % 32]; q = low - (high bit set ? 0 : 4), v = d * scale * q.
void DequantizeQ3_K(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* scales = b + 96;
  const float d = LoadF16(b + 108);
  for (int e = 0; e < kQkK; ++e) {
    const int h = e / 128, s = (e / 32) % 4, l = e % 32;
    const float dl = d * static_cast<float>(Q3KScale(scales, e / 16));
    const int low = (qs[32 * h + l] >> (2 * s)) & 3;
    const int high = (hmask[l] >> (e / 32)) & 1;
    y[e] = dl * static_cast<float>(low - (high ? 0 : 4));
  }
}

// 6-bit scale and min of sub-block j (j < 8) of q4_K/q5_K, packed in 12 bytes:
// j < 4: scale = bytes[j] & 63, min = bytes[j + 4] & 63;
// j >= 4: scale = (bytes[j + 4] & 15) | (bytes[j - 4] >> 6) << 4,
//         min = (bytes[j + 4] >> 4) | (bytes[j] >> 6) << 4.
void Q4KScaleMin(const uint8_t* bytes, int j, int* scale, int* min) {
  if (j < 4) {
    *scale = bytes[j] & 63;
    *min = bytes[j + 4] & 63;
  } else {
    *scale = (bytes[j + 4] & 0x0F) | ((bytes[j - 4] >> 6) << 4);
    *min = (bytes[j + 4] >> 4) | ((bytes[j] >> 6) << 4);
  }
}

// q4_K: 8 sub-blocks of 32. Value e = 64 * c + 32 * n + l is nibble n of qs[32 * c + l];
// v = (d * scale) * q - (dmin * min) for sub-block e / 32.
// q5_K adds a fifth bit: bit e / 32 of qh[e % 32].
void DequantizeQ45_K(const uint8_t* b, bool five_bit, float* y) {
  const float d = LoadF16(b);
  const float dmin = LoadF16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = five_bit ? b + 48 : b + 16;
  for (int j = 0; j < 8; ++j) {
    int scale, min;
    Q4KScaleMin(scales, j, &scale, &min);
    const float dl = d * static_cast<float>(scale);
    const float ml = dmin * static_cast<float>(min);
    const int c = j / 2, n = j % 2;
    for (int l = 0; l < 32; ++l) {
      int q = (qs[32 * c + l] >> (4 * n)) & 0x0F;
      if (five_bit) q |= ((qh[l] >> j) & 1) << 4;
      y[32 * j + l] = dl * static_cast<float>(q) - ml;
    }
  }
}

// q6_K: 16 sub-blocks of 16 with int8 scales. Value e = 128 * h + r (r < 128): low 4 bits are
// nibble r / 64 of ql[64 * h + r % 64], high 2 bits are bits 2 * (r / 32) of qh[32 * h + r % 32];
// v = (d * scale) * (q - 32).
void DequantizeQ6_K(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
  const float d = LoadF16(b + 208);
  for (int e = 0; e < kQkK; ++e) {
    const int h = e / 128, r = e % 128;
    const int low = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0F;
    const int high = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 3;
    const float dl = d * static_cast<float>(scales[e / 16]);
    y[e] = dl * static_cast<float>((low | (high << 4)) - 32);
  }
}

void DequantizeQ8_K(const uint8_t* b, float* y) {
  float d;
  std::memcpy(&d, b, sizeof(d));
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 4);
  for (int j = 0; j < kQkK; ++j) y[j] = d * static_cast<float>(qs[j]);
}

}  // namespace

absl::StatusOr<GgmlTypeTraits> GetGgmlTypeTraits(uint32_t type_id) {
  const GgmlTypeTraits* traits = FindTraits(type_id);
  if (traits == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown ggml type id ", type_id));
  }
  return *traits;
}

absl::StatusOr<uint64_t> GgmlByteSize(GgmlType type, int64_t n_elements) {
  const GgmlTypeTraits* traits = FindTraits(static_cast<uint32_t>(type));
  if (traits == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown ggml type id ", static_cast<uint32_t>(type)));
  }
  if (n_elements < 0 || n_elements % traits->block_elems != 0) {
    return absl::InvalidArgumentError(absl::StrCat("n_elements=", n_elements, " of type ",
                                                   AsAbsl(traits->name), " is not a multiple of ",
                                                   traits->block_elems));
  }
  const uint64_t n_blocks = static_cast<uint64_t>(n_elements / traits->block_elems);
  const uint64_t block_bytes = static_cast<uint64_t>(traits->block_bytes);
  if (n_blocks > std::numeric_limits<uint64_t>::max() / block_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "n_elements=", n_elements, " of type ", AsAbsl(traits->name), " overflows the byte size"));
  }
  return n_blocks * block_bytes;
}

absl::Status DequantizeGgml(GgmlType type, const uint8_t* src, uint64_t src_bytes,
                            int64_t n_elements, float* dst) {
  CTXMEM_ASSIGN_OR_RETURN(const uint64_t expected, GgmlByteSize(type, n_elements));
  const GgmlTypeTraits& traits = *FindTraits(static_cast<uint32_t>(type));
  if (expected != src_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("dequantize ", AsAbsl(traits.name), ": src_bytes=", src_bytes,
                     " but n_elements=", n_elements, " needs ", expected));
  }
  const int64_t n_blocks = n_elements / traits.block_elems;
  const int64_t bb = traits.block_bytes;
  const int64_t be = traits.block_elems;
  switch (type) {
    case GgmlType::kF32:
      if (n_elements > 0) std::memcpy(dst, src, src_bytes);
      return absl::OkStatus();
    case GgmlType::kF16:
      for (int64_t i = 0; i < n_elements; ++i) dst[i] = LoadF16(src + 2 * i);
      return absl::OkStatus();
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n_elements; ++i) dst[i] = BFloat16ToFloat(LoadU16(src + 2 * i));
      return absl::OkStatus();
    default:
      break;
  }
  for (int64_t i = 0; i < n_blocks; ++i) {
    const uint8_t* b = src + i * bb;
    float* y = dst + i * be;
    switch (type) {
      case GgmlType::kQ4_0:
        DequantizeQ4_0(b, y);
        break;
      case GgmlType::kQ4_1:
        DequantizeQ4_1(b, y);
        break;
      case GgmlType::kQ5_0:
        DequantizeQ5_0(b, y);
        break;
      case GgmlType::kQ5_1:
        DequantizeQ5_1(b, y);
        break;
      case GgmlType::kQ8_0:
        DequantizeQ8(b, 2, y);
        break;
      case GgmlType::kQ8_1:
        DequantizeQ8(b, 4, y);
        break;
      case GgmlType::kQ2_K:
        DequantizeQ2_K(b, y);
        break;
      case GgmlType::kQ3_K:
        DequantizeQ3_K(b, y);
        break;
      case GgmlType::kQ4_K:
        DequantizeQ45_K(b, /*five_bit=*/false, y);
        break;
      case GgmlType::kQ5_K:
        DequantizeQ45_K(b, /*five_bit=*/true, y);
        break;
      case GgmlType::kQ6_K:
        DequantizeQ6_K(b, y);
        break;
      case GgmlType::kQ8_K:
        DequantizeQ8_K(b, y);
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("dequantization of ggml type ", AsAbsl(traits.name), " is not supported"));
    }
  }
  return absl::OkStatus();
}

}  // namespace ctxmem::weights
