#include "common/model/quantized_matrix.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/weights/float16.h"

// Invariants: qs_, d_ and m_ (q4_1 only) hold every tile of ceil(rows_ / 16) row groups
// (cpu_kernels.h), padded rows zero; cols_ % 32 == 0. The codes are GGML's bits, only moved:
// SetCode/Code map (row, value) to its tile byte (and nibble).

namespace ctxmem::model {
namespace {

constexpr int64_t kBlock = 32;

uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// GGML q4 block value j (0..31) from its 16 value bytes.
inline uint8_t GgmlNibble(const uint8_t* qs, int j) {
  return j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
}

int32_t KernelType(QuantType t) {
  if (t == QuantType::kQ4_0) return kKernelQ4_0;
  if (t == QuantType::kQ4_1) return kKernelQ4_1;
  return kKernelQ8_0;
}

int64_t Groups(int64_t rows) { return (rows + kRowGroup - 1) / kRowGroup; }

}  // namespace

QuantizedMatrix QuantizedMatrix::Allocate(QuantType type, int64_t rows, int64_t cols) {
  QuantizedMatrix q;
  q.type_ = type;
  q.rows_ = rows;
  q.cols_ = cols;
  const int64_t tiles = Groups(rows) * (cols / kBlock);
  q.qs_.assign(tiles * KernelTileBytes(KernelType(type)), 0);
  q.d_.assign(tiles * kRowGroup, 0);
  if (type == QuantType::kQ4_1) q.m_.assign(tiles * kRowGroup, 0);
  return q;
}

int64_t QuantizedMatrix::ScaleIndex(int64_t r, int64_t b) const {
  return ((r / kRowGroup) * (cols_ / kBlock) + b) * kRowGroup + r % kRowGroup;
}

// Value v of row r sits in tile (r / 16, v / 32) at vector k = (v % 32) / 4, lane j = r % 16,
// byte t = v % 4 of the lane; q4 vectors 2c and 2c+1 share chunk c's bytes (low, high nibble).
QuantizedMatrix::CodeSlot QuantizedMatrix::Slot(int64_t r, int64_t v) const {
  const int64_t nb = cols_ / kBlock, k = (v % kBlock) / 4;
  const int64_t lane_byte = 4 * (r % kRowGroup) + v % 4;
  const int64_t tile = ((r / kRowGroup) * nb + v / kBlock) * KernelTileBytes(KernelType(type_));
  if (type_ == QuantType::kQ8_0) return {tile + 64 * k + lane_byte, 0};
  return {tile + 64 * (k / 2) + lane_byte, (k & 1) != 0 ? 4 : 0};
}

uint8_t QuantizedMatrix::Code(int64_t r, int64_t v) const {
  const CodeSlot s = Slot(r, v);
  const uint8_t byte = qs_[s.byte];
  return type_ == QuantType::kQ8_0 ? byte : (byte >> s.shift) & 0x0F;
}

void QuantizedMatrix::SetCode(int64_t r, int64_t v, uint8_t code) {
  const CodeSlot s = Slot(r, v);
  qs_[s.byte] |= static_cast<uint8_t>(code << s.shift);
}

void QuantizedMatrix::CopyRow(const QuantizedMatrix& from, int64_t src, int64_t dst) {
  const int64_t nb = cols_ / kBlock;
  for (int64_t v = 0; v < cols_; ++v) SetCode(dst, v, from.Code(src, v));
  for (int64_t b = 0; b < nb; ++b) {
    d_[ScaleIndex(dst, b)] = from.d_[from.ScaleIndex(src, b)];
    if (!m_.empty()) m_[ScaleIndex(dst, b)] = from.m_[from.ScaleIndex(src, b)];
  }
}

std::string_view QuantTypeName(QuantType type) {
  switch (type) {
    case QuantType::kQ4_0:
      return "q4_0";
    case QuantType::kQ4_1:
      return "q4_1";
    case QuantType::kQ8_0:
      return "q8_0";
  }
  return "unknown";
}

absl::StatusOr<QuantizedMatrix> QuantizedMatrix::FromGgml(weights::GgmlType type,
                                                          const uint8_t* data, uint64_t bytes,
                                                          int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0 || cols % kBlock != 0) {
    return absl::InvalidArgumentError(absl::StrCat("quantized matrix [", rows, ", ", cols,
                                                   "]: cols must be a positive multiple of 32"));
  }
  CTXMEM_ASSIGN_OR_RETURN(const uint64_t expected, weights::GgmlByteSize(type, rows * cols));
  if (bytes != expected) {
    return absl::InvalidArgumentError(absl::StrCat("quantized matrix [", rows, ", ", cols,
                                                   "]: ", bytes, " bytes, expected ", expected));
  }
  const int64_t nb = cols / kBlock;
  if (type == weights::GgmlType::kQ4_0 || type == weights::GgmlType::kQ4_1) {
    const bool q41 = type == weights::GgmlType::kQ4_1;
    const int64_t block_bytes = q41 ? 20 : 18;
    const int64_t head = q41 ? 4 : 2;
    QuantizedMatrix q = Allocate(q41 ? QuantType::kQ4_1 : QuantType::kQ4_0, rows, cols);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = data + (r * nb + b) * block_bytes;
        q.d_[q.ScaleIndex(r, b)] = LoadU16(blk);
        if (q41) q.m_[q.ScaleIndex(r, b)] = LoadU16(blk + 2);
        for (int j = 0; j < kBlock; ++j) q.SetCode(r, b * kBlock + j, GgmlNibble(blk + head, j));
      }
    }
    return q;
  }
  if (type == weights::GgmlType::kQ8_0) {
    QuantizedMatrix q = Allocate(QuantType::kQ8_0, rows, cols);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = data + (r * nb + b) * 34;
        q.d_[q.ScaleIndex(r, b)] = LoadU16(blk);
        for (int j = 0; j < kBlock; ++j) q.SetCode(r, b * kBlock + j, blk[2 + j]);
      }
    }
    return q;
  }
  // Fallback: dequantize row by row and re-quantize to q8_0.
  CTXMEM_ASSIGN_OR_RETURN(const uint64_t row_src_bytes, weights::GgmlByteSize(type, cols));
  std::vector<float> dense(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    CTXMEM_RETURN_IF_ERROR(weights::DequantizeGgml(type, data + r * row_src_bytes, row_src_bytes,
                                                   cols, dense.data() + r * cols));
  }
  return QuantizeQ8_0(dense.data(), rows, cols);
}

absl::StatusOr<QuantizedMatrix> QuantizedMatrix::QuantizeQ8_0(const float* data, int64_t rows,
                                                              int64_t cols) {
  if (rows <= 0 || cols <= 0 || cols % kBlock != 0) {
    return absl::InvalidArgumentError(absl::StrCat("quantized matrix [", rows, ", ", cols,
                                                   "]: cols must be a positive multiple of 32"));
  }
  const int64_t nb = cols / kBlock;
  QuantizedMatrix q = Allocate(QuantType::kQ8_0, rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* x = data + r * cols + b * kBlock;
      float amax = 0;
      for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
      const uint16_t dh = weights::FloatToHalf(amax / 127.0f);
      const float d = weights::HalfToFloat(dh);
      const float id = d != 0 ? 1.0f / d : 0.0f;
      q.d_[q.ScaleIndex(r, b)] = dh;
      for (int j = 0; j < kBlock; ++j) {
        const float v = std::nearbyint(x[j] * id);
        q.SetCode(r, b * kBlock + j,
                  static_cast<uint8_t>(static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f))));
      }
    }
  }
  return q;
}

absl::StatusOr<QuantizedMatrix> QuantizedMatrix::ConcatRows(
    absl::Span<const QuantizedMatrix* const> parts) {
  if (parts.empty()) return absl::InvalidArgumentError("ConcatRows: no parts");
  int64_t rows = 0;
  for (const QuantizedMatrix* p : parts) {
    if (p->type_ != parts[0]->type_ || p->cols_ != parts[0]->cols_) {
      return absl::InvalidArgumentError(
          absl::StrCat("ConcatRows: parts differ: ", AsAbsl(QuantTypeName(p->type_)), " [",
                       p->rows_, ", ", p->cols_, "] vs ", AsAbsl(QuantTypeName(parts[0]->type_)),
                       " [.., ", parts[0]->cols_, "]"));
    }
    rows += p->rows_;
  }
  QuantizedMatrix q = Allocate(parts[0]->type_, rows, parts[0]->cols_);
  int64_t dst = 0;
  for (const QuantizedMatrix* p : parts) {
    for (int64_t r = 0; r < p->rows_; ++r) q.CopyRow(*p, r, dst++);
  }
  return q;
}

QuantizedMatrix QuantizedMatrix::PermuteRows(absl::Span<const int64_t> perm) const {
  QuantizedMatrix q = Allocate(type_, rows_, cols_);
  for (int64_t i = 0; i < rows_; ++i) q.CopyRow(*this, perm[i], i);
  return q;
}

void QuantizedMatrix::DequantizeRow(int64_t r, float* out) const {
  const int64_t nb = cols_ / kBlock;
  for (int64_t b = 0; b < nb; ++b) {
    const float d = weights::HalfToFloat(d_[ScaleIndex(r, b)]);
    float* y = out + b * kBlock;
    switch (type_) {
      case QuantType::kQ4_0:
        for (int j = 0; j < kBlock; ++j) {
          y[j] = d * static_cast<float>(static_cast<int>(Code(r, b * kBlock + j)) - 8);
        }
        break;
      case QuantType::kQ4_1: {
        const float m = weights::HalfToFloat(m_[ScaleIndex(r, b)]);
        for (int j = 0; j < kBlock; ++j) {
          y[j] = d * static_cast<float>(Code(r, b * kBlock + j)) + m;
        }
        break;
      }
      case QuantType::kQ8_0:
        for (int j = 0; j < kBlock; ++j) {
          y[j] = static_cast<float>(static_cast<int8_t>(Code(r, b * kBlock + j))) * d;
        }
        break;
    }
  }
}

at::Tensor QuantizedMatrix::Dequantize() const {
  at::Tensor t = at::empty({rows_, cols_}, at::kFloat);  // [rows, cols]
  float* p = t.data_ptr<float>();
  for (int64_t r = 0; r < rows_; ++r) DequantizeRow(r, p + r * cols_);
  return t;
}

int64_t QuantizedMatrix::bytes() const {
  return static_cast<int64_t>(qs_.size() + 2 * d_.size() + 2 * m_.size());
}

KernelWeights QuantizedMatrix::view() const {
  return KernelWeights{KernelType(type_), rows_,     cols_,
                       qs_.data(),        d_.data(), m_.empty() ? nullptr : m_.data()};
}

}  // namespace ctxmem::model
