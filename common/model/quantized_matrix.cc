#include "common/model/quantized_matrix.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/weights/float16.h"

// Invariants: qs_ holds rows_ * row_bytes_ bytes, d_ (and m_ for q4_1) rows_ * cols_ / 32
// scales; cols_ % 32 == 0. The q4 pair layout (cpu_kernels.h) is produced by PackQ4Row from
// GGML's per-block order and undone by Nibble; the bits themselves are GGML's.

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

// Packs nb GGML q4 blocks' value bytes (`blocks[b]` -> 16 bytes) into one row of the pair
// layout at `out` (nb * 16 bytes).
void PackQ4Row(const uint8_t* const* blocks, int64_t nb, uint8_t* out) {
  int64_t b = 0;
  for (; b + 1 < nb; b += 2) {
    for (int j = 0; j < 32; ++j) {
      out[b * 16 + j] =
          static_cast<uint8_t>(GgmlNibble(blocks[b], j) | (GgmlNibble(blocks[b + 1], j) << 4));
    }
  }
  if (b < nb) std::memcpy(out + b * 16, blocks[b], 16);
}

// Value j of block b of a packed q4 row (inverse of PackQ4Row).
inline int Nibble(const uint8_t* row, int64_t nb, int64_t b, int j) {
  if ((b & 1) == 0 && b + 1 < nb) return row[b * 16 + j] & 0x0F;
  if ((b & 1) == 1) return row[(b - 1) * 16 + j] >> 4;
  return GgmlNibble(row + b * 16, j);
}

}  // namespace

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
  QuantizedMatrix q;
  q.rows_ = rows;
  q.cols_ = cols;
  q.d_.resize(rows * nb);
  if (type == weights::GgmlType::kQ4_0 || type == weights::GgmlType::kQ4_1) {
    const bool q41 = type == weights::GgmlType::kQ4_1;
    const int64_t block_bytes = q41 ? 20 : 18;
    const int64_t head = q41 ? 4 : 2;
    q.type_ = q41 ? QuantType::kQ4_1 : QuantType::kQ4_0;
    q.row_bytes_ = cols / 2;
    q.qs_.resize(rows * q.row_bytes_);
    if (q41) q.m_.resize(rows * nb);
    std::vector<const uint8_t*> blocks(nb);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = data + (r * nb + b) * block_bytes;
        q.d_[r * nb + b] = LoadU16(blk);
        if (q41) q.m_[r * nb + b] = LoadU16(blk + 2);
        blocks[b] = blk + head;
      }
      PackQ4Row(blocks.data(), nb, q.qs_.data() + r * q.row_bytes_);
    }
    return q;
  }
  if (type == weights::GgmlType::kQ8_0) {
    q.type_ = QuantType::kQ8_0;
    q.row_bytes_ = cols;
    q.qs_.resize(rows * cols);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = data + (r * nb + b) * 34;
        q.d_[r * nb + b] = LoadU16(blk);
        std::memcpy(q.qs_.data() + r * cols + b * kBlock, blk + 2, kBlock);
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
  QuantizedMatrix q;
  q.type_ = QuantType::kQ8_0;
  q.rows_ = rows;
  q.cols_ = cols;
  q.row_bytes_ = cols;
  q.qs_.resize(rows * cols);
  q.d_.resize(rows * nb);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* x = data + r * cols + b * kBlock;
      float amax = 0;
      for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
      const uint16_t dh = weights::FloatToHalf(amax / 127.0f);
      const float d = weights::HalfToFloat(dh);
      const float id = d != 0 ? 1.0f / d : 0.0f;
      q.d_[r * nb + b] = dh;
      for (int j = 0; j < kBlock; ++j) {
        const float v = std::nearbyint(x[j] * id);
        q.qs_[r * cols + b * kBlock + j] =
            static_cast<uint8_t>(static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f)));
      }
    }
  }
  return q;
}

absl::StatusOr<QuantizedMatrix> QuantizedMatrix::ConcatRows(
    absl::Span<const QuantizedMatrix* const> parts) {
  if (parts.empty()) return absl::InvalidArgumentError("ConcatRows: no parts");
  QuantizedMatrix q;
  q.type_ = parts[0]->type_;
  q.cols_ = parts[0]->cols_;
  q.row_bytes_ = parts[0]->row_bytes_;
  for (const QuantizedMatrix* p : parts) {
    if (p->type_ != q.type_ || p->cols_ != q.cols_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ConcatRows: parts differ: ", AsAbsl(QuantTypeName(p->type_)), " [", p->rows_, ", ",
          p->cols_, "] vs ", AsAbsl(QuantTypeName(q.type_)), " [.., ", q.cols_, "]"));
    }
    q.rows_ += p->rows_;
    q.qs_.insert(q.qs_.end(), p->qs_.begin(), p->qs_.end());
    q.d_.insert(q.d_.end(), p->d_.begin(), p->d_.end());
    q.m_.insert(q.m_.end(), p->m_.begin(), p->m_.end());
  }
  return q;
}

QuantizedMatrix QuantizedMatrix::PermuteRows(absl::Span<const int64_t> perm) const {
  const int64_t nb = cols_ / kBlock;
  QuantizedMatrix q;
  q.type_ = type_;
  q.rows_ = rows_;
  q.cols_ = cols_;
  q.row_bytes_ = row_bytes_;
  q.qs_.resize(qs_.size());
  q.d_.resize(d_.size());
  q.m_.resize(m_.size());
  for (int64_t i = 0; i < rows_; ++i) {
    const int64_t src = perm[i];
    std::memcpy(q.qs_.data() + i * row_bytes_, qs_.data() + src * row_bytes_, row_bytes_);
    std::memcpy(q.d_.data() + i * nb, d_.data() + src * nb, nb * sizeof(uint16_t));
    if (!m_.empty()) std::memcpy(q.m_.data() + i * nb, m_.data() + src * nb, nb * sizeof(uint16_t));
  }
  return q;
}

void QuantizedMatrix::DequantizeRow(int64_t r, float* out) const {
  const int64_t nb = cols_ / kBlock;
  const uint8_t* row = qs_.data() + r * row_bytes_;
  for (int64_t b = 0; b < nb; ++b) {
    const float d = weights::HalfToFloat(d_[r * nb + b]);
    float* y = out + b * kBlock;
    switch (type_) {
      case QuantType::kQ4_0:
        for (int j = 0; j < kBlock; ++j) y[j] = d * static_cast<float>(Nibble(row, nb, b, j) - 8);
        break;
      case QuantType::kQ4_1: {
        const float m = weights::HalfToFloat(m_[r * nb + b]);
        for (int j = 0; j < kBlock; ++j) y[j] = d * static_cast<float>(Nibble(row, nb, b, j)) + m;
        break;
      }
      case QuantType::kQ8_0:
        for (int j = 0; j < kBlock; ++j) {
          y[j] = static_cast<float>(static_cast<int8_t>(row[b * kBlock + j])) * d;
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
  int32_t t = kKernelQ8_0;
  if (type_ == QuantType::kQ4_0) t = kKernelQ4_0;
  if (type_ == QuantType::kQ4_1) t = kKernelQ4_1;
  return KernelWeights{
      t, rows_, cols_, qs_.data(), row_bytes_, d_.data(), m_.empty() ? nullptr : m_.data()};
}

}  // namespace ctxmem::model
