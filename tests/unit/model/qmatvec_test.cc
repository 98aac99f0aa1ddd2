// The quantized kernels against the fp32 reference (dequantize + matmul), on random and on the
// bundled model's real weights, for every kernel family this CPU can run (capped by
// CTXMEM_CPU_ISA, so the forced-portable run checks the scalar family alone).

#include "common/model/qmatvec.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "common/model/cpu_features.h"
#include "common/model/quantized_matrix.h"
#include "common/weights/float16.h"
#include "common/weights/gguf_file.h"
#include "gtest/gtest.h"
#include "tests/unit/model/test_paths.h"

namespace ctxmem::model {
namespace {

using weights::GgmlType;

std::vector<CpuIsa> RunnableIsas() {
  std::vector<CpuIsa> out;
  for (CpuIsa isa : {CpuIsa::kScalar, CpuIsa::kAvx2, CpuIsa::kAvx512Vnni}) {
    if (static_cast<int>(isa) <= static_cast<int>(ActiveCpuIsa())) out.push_back(isa);
  }
  return out;
}

// Random GGML blocks of `type` for a [rows, cols] matrix with weights of magnitude ~0.05.
std::vector<uint8_t> RandomGgml(GgmlType type, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.002f, 0.01f);
  const int64_t nb = rows * cols / 32;
  const int64_t bb = type == GgmlType::kQ4_0 ? 18 : type == GgmlType::kQ4_1 ? 20 : 34;
  std::vector<uint8_t> out(nb * bb);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* p = out.data() + b * bb;
    const uint16_t d = weights::FloatToHalf(scale(rng));
    std::memcpy(p, &d, 2);
    int64_t head = 2;
    if (type == GgmlType::kQ4_1) {
      const uint16_t m = weights::FloatToHalf(-8 * scale(rng));
      std::memcpy(p + 2, &m, 2);
      head = 4;
    }
    for (int64_t j = head; j < bb; ++j) p[j] = static_cast<uint8_t>(byte(rng));
  }
  return out;
}

at::Tensor RandomActivations(int64_t n, int64_t cols, uint32_t seed) {
  at::manual_seed(seed);
  return at::randn({n, cols}, at::kFloat);  // [n, cols]
}

struct Errors {
  double vs_exact = 0;  // max |y - W . dequant(Q8(x))| / max |y_ref|: the kernel itself
  double vs_fp32 = 0;   // max |y - W . x| / max |y_ref|: kernel + int8 activations
};

// Runs QMatMul of family `isa` and compares with both references (computed in fp64).
Errors Check(CpuIsa isa, const QuantizedMatrix& w, const at::Tensor& x) {
  const CpuKernelTable& k = CpuKernels(isa);
  const int64_t n = x.size(0), cols = x.size(1);
  Q8Activations qx;
  qx.Quantize(CpuKernels(CpuIsa::kScalar), x.data_ptr<float>(), n, cols);
  // [n, rows + 5]: the 5 extra columns are sentinels (a kernel must never write the padded rows
  // of its last row group, cpu_kernels.h).
  const int64_t ldy = w.rows() + 5;
  at::Tensor y_pad = at::full({n, ldy}, -12345.0f, at::kFloat);
  QMatMul(k, w, qx, y_pad.data_ptr<float>(), ldy, /*n_threads=*/2);
  EXPECT_TRUE(at::equal(y_pad.slice(1, w.rows()), at::full({n, 5}, -12345.0f, at::kFloat)))
      << CpuIsaName(isa) << ": wrote past the last row";
  const at::Tensor y = y_pad.slice(1, 0, w.rows());  // [n, rows]
  // dequant(Q8(x)): [n, cols]
  const KernelActivations xv = qx.view();
  at::Tensor xq = at::empty({n, cols}, at::kFloat);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t c = 0; c < cols; ++c) {
      xq[i][c] = static_cast<float>(xv.q[i * cols + c]) * xv.d[i * (cols / 32) + c / 32];
    }
  }
  const at::Tensor wd = w.Dequantize().to(at::kDouble);  // [rows, cols]
  const at::Tensor ref = at::matmul(x.to(at::kDouble), wd.t());
  const at::Tensor exact = at::matmul(xq.to(at::kDouble), wd.t());
  const double scale = ref.abs().max().item<double>();
  Errors e;
  e.vs_exact = (y.to(at::kDouble) - exact).abs().max().item<double>() / scale;
  e.vs_fp32 = (y.to(at::kDouble) - ref).abs().max().item<double>() / scale;
  return e;
}

TEST(QuantizedMatrixTest, DequantizeIsBitIdenticalToGgml) {
  for (GgmlType type : {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ8_0}) {
    for (int64_t cols : {64, 96, 576}) {  // even, odd and the model's block counts
      const int64_t rows = 7;
      const auto raw = RandomGgml(type, rows, cols, 11);
      auto q = QuantizedMatrix::FromGgml(type, raw.data(), raw.size(), rows, cols);
      ASSERT_TRUE(q.ok()) << q.status();
      std::vector<float> ref(rows * cols);
      ASSERT_TRUE(
          weights::DequantizeGgml(type, raw.data(), raw.size(), rows * cols, ref.data()).ok());
      const at::Tensor got = q->Dequantize();
      EXPECT_EQ(std::memcmp(got.data_ptr<float>(), ref.data(), ref.size() * sizeof(float)), 0)
          << "type " << static_cast<int>(type) << " cols " << cols;
    }
  }
}

TEST(QuantizedMatrixTest, RejectsBadShapes) {
  std::vector<uint8_t> raw(20 * 4);
  EXPECT_FALSE(QuantizedMatrix::FromGgml(GgmlType::kQ4_1, raw.data(), raw.size(), 4, 31).ok());
  EXPECT_FALSE(QuantizedMatrix::FromGgml(GgmlType::kQ4_1, raw.data(), raw.size(), 2, 32).ok());
  auto q = QuantizedMatrix::FromGgml(GgmlType::kQ4_1, raw.data(), raw.size(), 4, 32);
  ASSERT_TRUE(q.ok());
  auto q8 = QuantizedMatrix::QuantizeQ8_0(std::vector<float>(64, 1.0f).data(), 2, 32);
  ASSERT_TRUE(q8.ok());
  const QuantizedMatrix* parts[] = {&*q, &*q8};
  EXPECT_FALSE(QuantizedMatrix::ConcatRows(parts).ok());
}

TEST(QuantizedMatrixTest, ConcatAndPermuteRows) {
  const auto a_raw = RandomGgml(GgmlType::kQ4_1, 3, 64, 1);
  const auto b_raw = RandomGgml(GgmlType::kQ4_1, 2, 64, 2);
  auto a = QuantizedMatrix::FromGgml(GgmlType::kQ4_1, a_raw.data(), a_raw.size(), 3, 64);
  auto b = QuantizedMatrix::FromGgml(GgmlType::kQ4_1, b_raw.data(), b_raw.size(), 2, 64);
  ASSERT_TRUE(a.ok() && b.ok());
  const QuantizedMatrix* parts[] = {&*a, &*b};
  auto ab = QuantizedMatrix::ConcatRows(parts);
  ASSERT_TRUE(ab.ok());
  EXPECT_TRUE(at::equal(ab->Dequantize(), at::cat({a->Dequantize(), b->Dequantize()}, 0)));
  const std::vector<int64_t> perm = {4, 0, 3, 1, 2};
  const QuantizedMatrix p = ab->PermuteRows(perm);
  EXPECT_TRUE(at::equal(p.Dequantize(), ab->Dequantize().index_select(0, at::tensor(perm))));
}

TEST(QuantizedMatrixTest, FallbackRequantizesToQ8) {
  // q5_0 has no kernel: it becomes q8_0 within q8's rounding of the q5 values.
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> raw(4 * 2 * 22);
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(byte(rng));
  for (size_t b = 0; b < raw.size() / 22; ++b) {
    const uint16_t d = weights::FloatToHalf(0.01f);
    std::memcpy(raw.data() + b * 22, &d, 2);
  }
  auto q = QuantizedMatrix::FromGgml(GgmlType::kQ5_0, raw.data(), raw.size(), 4, 64);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->type(), QuantType::kQ8_0);
  std::vector<float> ref(4 * 64);
  ASSERT_TRUE(
      weights::DequantizeGgml(GgmlType::kQ5_0, raw.data(), raw.size(), 256, ref.data()).ok());
  const at::Tensor diff = (q->Dequantize() - at::from_blob(ref.data(), {4, 64})).abs();
  EXPECT_LE(diff.max().item<float>(), 0.16f * 0.5f / 127 * 1.01f);  // half a q8 step of max|w|
}

TEST(QMatVecTest, RandomWeightsEveryTypeAndFamily) {
  for (CpuIsa isa : RunnableIsas()) {
    for (GgmlType type : {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ8_0}) {
      for (int64_t cols : {96, 576, 1536}) {
        const int64_t rows = 67;
        const auto raw = RandomGgml(type, rows, cols, 3);
        auto w = QuantizedMatrix::FromGgml(type, raw.data(), raw.size(), rows, cols);
        ASSERT_TRUE(w.ok());
        for (int64_t n : {1, 2, 3, 4, 5, 8, 9, 13, 19}) {
          const Errors e = Check(isa, *w, RandomActivations(n, cols, 7 + n));
          SCOPED_TRACE(::testing::Message() << CpuIsaName(isa) << " type " << static_cast<int>(type)
                                            << " cols " << cols << " n " << n);
          EXPECT_LT(e.vs_exact, 2e-6);
          EXPECT_LT(e.vs_fp32, 0.03);
          if (n == 1 && cols == 576) {
            std::printf("[ %s %-4s ] max rel error vs exact-int reference %.2e, vs fp32 %.2e\n",
                        std::string(CpuIsaName(isa)).c_str(),
                        std::string(QuantTypeName(w->type())).c_str(), e.vs_exact, e.vs_fp32);
          }
        }
      }
    }
  }
}

// Matrices big enough for QMatMul to split them between two threads (>= 8 MiB x rows, so even
// under OMP_WAIT_POLICY=passive), with a row count that leaves a partial last row group.
TEST(QMatVecTest, SplitBetweenThreadsOnRowGroups) {
  for (CpuIsa isa : RunnableIsas()) {
    for (GgmlType type : {GgmlType::kQ4_1, GgmlType::kQ8_0}) {
      const int64_t rows = type == GgmlType::kQ8_0 ? 4099 : 8195, cols = 1536;
      const auto raw = RandomGgml(type, rows, cols, 5);
      auto w = QuantizedMatrix::FromGgml(type, raw.data(), raw.size(), rows, cols);
      ASSERT_TRUE(w.ok());
      ASSERT_GE(w->bytes() * 2, int64_t{8} << 20);
      const Errors e = Check(isa, *w, RandomActivations(2, cols, 21));
      SCOPED_TRACE(::testing::Message() << CpuIsaName(isa) << " type " << static_cast<int>(type));
      EXPECT_LT(e.vs_exact, 2e-6);
      EXPECT_LT(e.vs_fp32, 0.03);
    }
  }
}

TEST(QMatVecTest, QuantizeRowAgreesAcrossFamilies) {
  const at::Tensor x = RandomActivations(3, 1536, 9) * 3;
  Q8Activations ref;
  ref.Quantize(CpuKernels(CpuIsa::kScalar), x.data_ptr<float>(), 3, 1536);
  for (CpuIsa isa : RunnableIsas()) {
    Q8Activations got;
    got.Quantize(CpuKernels(isa), x.data_ptr<float>(), 3, 1536);
    EXPECT_EQ(std::memcmp(got.view().q, ref.view().q, 3 * 1536), 0) << CpuIsaName(isa);
    for (int64_t b = 0; b < 3 * 48; ++b) {
      EXPECT_FLOAT_EQ(got.view().d[b], ref.view().d[b]);
      EXPECT_NEAR(got.view().s[b], ref.view().s[b], 1e-5 * std::fabs(ref.view().s[b]) + 1e-6);
    }
  }
}

TEST(QMatVecTest, DotAndAxpyAgreeAcrossFamilies) {
  std::vector<float> a(77), b(77), y0(77, 1.0f);
  for (int i = 0; i < 77; ++i) a[i] = 0.1f * i - 3, b[i] = std::sin(0.3f * i);
  const float ref = CpuKernels(CpuIsa::kScalar).dot(a.data(), b.data(), 77);
  for (CpuIsa isa : RunnableIsas()) {
    EXPECT_NEAR(CpuKernels(isa).dot(a.data(), b.data(), 77), ref, 1e-4) << CpuIsaName(isa);
    std::vector<float> y = y0;
    CpuKernels(isa).axpy(0.5f, a.data(), y.data(), 77);
    for (int i = 0; i < 77; ++i) EXPECT_FLOAT_EQ(y[i], 1.0f + 0.5f * a[i]);
  }
}

// kernels.attend of every family against softmax(q K^T * scale) V by torch in fp64, with the
// entries in one segment or split in two (DecodeStream's past + own), query groups larger
// than the AVX-512 kernel's 4 heads, head sizes with a partial vector, and scores around the
// exp clamp (-87) after the max subtraction.
TEST(QMatVecTest, AttendMatchesSoftmaxAttention) {
  for (const int64_t hd : {64, 80, 36, 32, 128}) {
    for (const int64_t n_q : {1, 3, 6}) {
      for (const int64_t total : {1, 17, 203}) {
        for (const float spread : {1.0f, 30.0f}) {
          at::manual_seed(static_cast<uint64_t>(hd * 1000 + n_q * 100 + total));
          const at::Tensor q = at::randn({n_q, hd}, at::kFloat) * spread;  // [n_q, hd]
          const at::Tensor k = at::randn({total, hd}, at::kFloat);         // [total, hd]
          const at::Tensor v = at::randn({total, hd}, at::kFloat);         // [total, hd]
          const float scale = 0.125f;
          const at::Tensor ref =
              at::softmax(at::matmul(q.to(at::kDouble), k.to(at::kDouble).t()) * scale, -1)
                  .matmul(v.to(at::kDouble));  // [n_q, hd]
          const int64_t cut = total / 3;
          const KernelKvSegment one[1] = {{k.data_ptr<float>(), v.data_ptr<float>(), total}};
          const KernelKvSegment two[2] = {
              {k.data_ptr<float>(), v.data_ptr<float>(), cut},
              {k.data_ptr<float>() + cut * hd, v.data_ptr<float>() + cut * hd, total - cut}};
          for (CpuIsa isa : RunnableIsas()) {
            for (int n_segs : {1, 2}) {
              if (n_segs == 2 && cut == 0) continue;
              std::vector<float> scores(n_q * total), out(n_q * hd, -7.0f);
              CpuKernels(isa).attend(q.data_ptr<float>(), n_q, hd, scale, n_segs == 1 ? one : two,
                                     n_segs, scores.data(), out.data());
              const at::Tensor got =
                  at::from_blob(out.data(), {n_q, hd}, at::kFloat).to(at::kDouble);
              const double err = (got - ref).abs().max().item<double>();
              EXPECT_LT(err, 2e-5 * std::max(1.0, ref.abs().max().item<double>()))
                  << CpuIsaName(isa) << " hd " << hd << " n_q " << n_q << " total " << total
                  << " spread " << spread << " segments " << n_segs;
            }
          }
        }
      }
    }
  }
}

TEST(QMatVecTest, SiluMulMatchesDefinition) {
  std::vector<float> gate(1000), up(1000);
  for (int i = 0; i < 1000; ++i) {
    gate[i] = 0.25f * static_cast<float>(i - 500);  // -125 .. 125: both clamps of the vector exp
    up[i] = std::cos(0.1f * static_cast<float>(i));
  }
  gate[7] = -1e30f;
  gate[8] = 1e30f;
  for (CpuIsa isa : RunnableIsas()) {
    for (int64_t n : {1000, 13}) {
      std::vector<float> out(n, -7.0f);
      CpuKernels(isa).silu_mul(gate.data(), up.data(), out.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double g = gate[i], ref = g / (1.0 + std::exp(-g)) * up[i];
        EXPECT_NEAR(out[i], ref, 1e-6 * std::max(1.0, std::fabs(ref)))
            << CpuIsaName(isa) << " i " << i << " gate " << g;
      }
    }
  }
}

// Real weights: the bundled model's Q4_1 ffn_down of layer 0 and the first rows of its Q8_0
// token embedding (the tied output head).
TEST(QMatVecTest, RealWeightsOfTheBundledModel) {
  if (!testing::BundledModelPresent()) GTEST_SKIP() << "bundled model not found";
  auto file = weights::GgufFile::Open(testing::BundledModelPath());
  ASSERT_TRUE(file.ok()) << file.status();
  for (const char* name : {"blk.0.ffn_down.weight", "blk.3.attn_q.weight", "token_embd.weight"}) {
    const weights::GgufTensorInfo* info = (*file)->FindTensor(name);
    ASSERT_NE(info, nullptr) << name;
    int64_t rows = info->shape[0];
    const int64_t cols = info->shape[1];
    auto row_bytes = weights::GgmlByteSize(info->type, cols);
    ASSERT_TRUE(row_bytes.ok());
    rows = std::min<int64_t>(rows, 2048);
    auto w = QuantizedMatrix::FromGgml(info->type, (*file)->TensorData(*info), *row_bytes * rows,
                                       rows, cols);
    ASSERT_TRUE(w.ok()) << w.status();
    for (CpuIsa isa : RunnableIsas()) {
      for (int64_t n : {1, 4}) {
        const Errors e = Check(isa, *w, RandomActivations(n, cols, 21));
        EXPECT_LT(e.vs_exact, 2e-6) << name << " " << CpuIsaName(isa);
        EXPECT_LT(e.vs_fp32, 0.03) << name << " " << CpuIsaName(isa);
        if (n == 1) {
          std::printf("[ %s %s (%s) ] max rel error vs exact-int %.2e, vs fp32 %.2e\n",
                      std::string(CpuIsaName(isa)).c_str(), name,
                      std::string(QuantTypeName(w->type())).c_str(), e.vs_exact, e.vs_fp32);
        }
      }
    }
  }
}

TEST(CpuFeaturesTest, ActiveNeverExceedsDetected) {
  EXPECT_LE(static_cast<int>(ActiveCpuIsa()), static_cast<int>(DetectedCpuIsa()));
  for (CpuIsa isa : {CpuIsa::kScalar, CpuIsa::kAvx2, CpuIsa::kAvx512Vnni}) {
    auto parsed = ParseCpuIsa(CpuIsaName(isa));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, isa);
  }
  EXPECT_FALSE(ParseCpuIsa("amx").ok());
  // Asking for a family above the CPU's gives the CPU's own.
  EXPECT_STREQ(CpuKernels(CpuIsa::kAvx512Vnni).name, CpuKernels(DetectedCpuIsa()).name);
  const CpuFeatures& f = DetectCpuFeatures();
  if (DetectedCpuIsa() == CpuIsa::kAvx512Vnni) {
    EXPECT_TRUE(f.os_avx512 && f.avx512vnni);
  }
}

}  // namespace
}  // namespace ctxmem::model
