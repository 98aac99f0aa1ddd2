#pragma once
// A weight matrix kept in 4/8-bit GGML blocks, repacked into row tiles for the CPU qmatvec
// kernels (cpu_kernels.h: 16 rows x 32 values per tile): decode-shaped products (1 to a few rows)
// read these bytes directly instead of fp32 weights (4-8x less memory traffic). Types: q4_0, q4_1
// and q8_0 are kept as they are (same bits, scales moved into their own arrays); any other GGML
// type the file reader can dequantize is re-quantized to q8_0 (the documented fallback: 8.5 bits
// per weight, error below the source type's own), as are fp32 weights given through QuantizeQ8_0.
// Thread-safety: immutable after construction; share freely. Move-only (large).

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/model/cpu_kernels.h"
#include "common/weights/ggml_type.h"

namespace ctxmem::model {

enum class QuantType { kQ4_0, kQ4_1, kQ8_0 };

std::string_view QuantTypeName(QuantType type);  // "q4_0", "q4_1", "q8_0"

class QuantizedMatrix {
 public:
  QuantizedMatrix() = default;
  QuantizedMatrix(QuantizedMatrix&&) = default;
  QuantizedMatrix& operator=(QuantizedMatrix&&) = default;
  QuantizedMatrix(const QuantizedMatrix&) = delete;
  QuantizedMatrix& operator=(const QuantizedMatrix&) = delete;

  // From `bytes` of GGML data of a [rows, cols] tensor (GGUF ne[0] = cols, rows outermost).
  // InvalidArgument when cols % 32 != 0, the byte count does not match, or the type cannot be
  // dequantized.
  static absl::StatusOr<QuantizedMatrix> FromGgml(weights::GgmlType type, const uint8_t* data,
                                                  uint64_t bytes, int64_t rows, int64_t cols);
  // Quantizes fp32 rows `data` [rows, cols] to q8_0 (d = max|w| / 127, round half to even).
  // InvalidArgument when cols % 32 != 0.
  static absl::StatusOr<QuantizedMatrix> QuantizeQ8_0(const float* data, int64_t rows,
                                                      int64_t cols);
  // [parts[0]; parts[1]; ...] stacked by rows (a fused projection). InvalidArgument when the
  // parts differ in type or cols, or `parts` is empty.
  static absl::StatusOr<QuantizedMatrix> ConcatRows(absl::Span<const QuantizedMatrix* const> parts);

  // Row i of the result is row perm[i] of this matrix (perm: a permutation of [0, rows)).
  QuantizedMatrix PermuteRows(absl::Span<const int64_t> perm) const;

  // Row r dequantized into out[cols], bit-identical to weights::DequantizeGgml on the source.
  void DequantizeRow(int64_t r, float* out) const;
  // The whole matrix dequantized: [rows, cols] fp32 (the reference in tests).
  at::Tensor Dequantize() const;

  QuantType type() const { return type_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t bytes() const;  // storage: values + scales (with the padded rows of the last group)
  // Raw view for the kernels; valid while this object lives and is not moved from.
  KernelWeights view() const;

 private:
  // Zeroed storage for `rows` x `cols` of `type` (all groups, padding included).
  static QuantizedMatrix Allocate(QuantType type, int64_t rows, int64_t cols);
  // The quantized code of value v of row r: a q4 nibble (0..15) or a q8 int8 value's byte.
  // SetCode requires the code's bits to be zero before (storage from Allocate).
  uint8_t Code(int64_t r, int64_t v) const;
  void SetCode(int64_t r, int64_t v, uint8_t code);
  // Where that code lives: qs_[byte], bits [shift, shift + 4) for q4 (the whole byte for q8).
  struct CodeSlot {
    int64_t byte;
    int shift;
  };
  CodeSlot Slot(int64_t r, int64_t v) const;
  // Index into d_ / m_ of block b of row r.
  int64_t ScaleIndex(int64_t r, int64_t b) const;
  // Row `dst` of this matrix = row `src` of `from` (same type and cols; dst's codes zero).
  void CopyRow(const QuantizedMatrix& from, int64_t src, int64_t dst);

  QuantType type_ = QuantType::kQ8_0;
  int64_t rows_ = 0, cols_ = 0;
  std::vector<uint8_t> qs_;  // [groups, cols / 32, tile bytes], row tiles (cpu_kernels.h)
  std::vector<uint16_t> d_;  // [groups, cols / 32, 16] fp16
  std::vector<uint16_t> m_;  // [groups, cols / 32, 16] fp16, q4_1 only
};

}  // namespace ctxmem::model
