#include "common/model/packed_weights.h"

#include <ATen/ATen.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/model/model_weights.h"
#include "common/model/torch_call.h"
#include "common/status.h"
#include "common/weights/gguf_file.h"

namespace ctxmem::model {
namespace {

absl::StatusOr<const weights::GgufTensorInfo*> Find(const weights::GgufFile& file,
                                                    const std::string& name,
                                                    std::vector<int64_t> shape) {
  const weights::GgufTensorInfo* info = file.FindTensor(name);
  if (info == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": missing tensor '", name, "'"));
  }
  if (info->shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.path(), ": tensor '", name, "' has shape [", absl::StrJoin(info->shape, ", "),
        "], expected [", absl::StrJoin(shape, ", "), "]"));
  }
  return info;
}

absl::StatusOr<QuantizedMatrix> Matrix(const weights::GgufFile& file, const std::string& name,
                                       int64_t rows, int64_t cols) {
  CTXMEM_ASSIGN_OR_RETURN(const weights::GgufTensorInfo* info, Find(file, name, {rows, cols}));
  auto m = QuantizedMatrix::FromGgml(info->type, file.TensorData(*info), info->n_bytes, rows, cols);
  if (!m.ok()) return WithContext(m.status(), absl::StrCat(file.path(), ": tensor '", name, "'"));
  return m;
}

absl::StatusOr<std::vector<float>> Vector(const weights::GgufFile& file, const std::string& name,
                                          int64_t n, bool required) {
  const weights::GgufTensorInfo* info = file.FindTensor(name);
  if (info == nullptr && !required) return std::vector<float>();
  CTXMEM_ASSIGN_OR_RETURN(info, Find(file, name, {n}));
  std::vector<float> out(n);
  CTXMEM_RETURN_IF_ERROR(file.ReadTensorF32(*info, out.data()));
  return out;
}

// GGUF -> HF row order of a q/k projection with `n_heads` heads (UnpermuteGgufQk's rows).
absl::StatusOr<std::vector<int64_t>> QkPermutation(int64_t rows, int64_t n_heads) {
  std::vector<int64_t> perm(rows);
  CTXMEM_RETURN_IF_ERROR(TorchCall("q/k row permutation", [&] {
    at::Tensor idx = UnpermuteGgufQk(at::arange(rows, at::kLong).view({rows, 1}), n_heads);
    for (int64_t i = 0; i < rows; ++i) perm[i] = idx[i][0].item<int64_t>();
  }));
  return perm;
}

}  // namespace

bool PackedWeights::Supports(const ModelConfig& c) {
  return c.arch != Arch::kGptNeox && !c.layer_norm && !c.parallel_residual && c.hidden % 32 == 0 &&
         (c.n_heads * c.head_dim) % 32 == 0 && c.ffn % 32 == 0;
}

absl::StatusOr<std::unique_ptr<PackedWeights>> PackedWeights::FromGguf(
    const weights::GgufFile& file, const ModelConfig& c) {
  if (!Supports(c)) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path(), ": no packed decode path for arch ", AsAbsl(ArchName(c.arch))));
  }
  auto p = std::make_unique<PackedWeights>();
  const int64_t h = c.hidden, q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
  CTXMEM_ASSIGN_OR_RETURN(p->out_norm, Vector(file, "output_norm.weight", h, true));
  const bool has_output = file.FindTensor("output.weight") != nullptr;
  CTXMEM_ASSIGN_OR_RETURN(
      p->lm_head, Matrix(file, has_output ? "output.weight" : "token_embd.weight", c.n_vocab, h));
  const bool permute = c.arch == Arch::kLlama;  // llama.cpp permutes llama's q/k rows only
  std::vector<int64_t> q_perm, k_perm;
  if (permute) {
    CTXMEM_ASSIGN_OR_RETURN(q_perm, QkPermutation(q_dim, c.n_heads));
    CTXMEM_ASSIGN_OR_RETURN(k_perm, QkPermutation(kv_dim, c.n_kv_heads));
  }
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const std::string b = absl::StrCat("blk.", i, ".");
    PackedLayer L;
    CTXMEM_ASSIGN_OR_RETURN(L.attn_norm, Vector(file, b + "attn_norm.weight", h, true));
    CTXMEM_ASSIGN_OR_RETURN(L.ffn_norm, Vector(file, b + "ffn_norm.weight", h, true));
    CTXMEM_ASSIGN_OR_RETURN(QuantizedMatrix wq, Matrix(file, b + "attn_q.weight", q_dim, h));
    CTXMEM_ASSIGN_OR_RETURN(QuantizedMatrix wk, Matrix(file, b + "attn_k.weight", kv_dim, h));
    CTXMEM_ASSIGN_OR_RETURN(QuantizedMatrix wv, Matrix(file, b + "attn_v.weight", kv_dim, h));
    if (permute) {
      wq = wq.PermuteRows(q_perm);
      wk = wk.PermuteRows(k_perm);
    }
    if (wq.type() != wk.type() || wq.type() != wv.type()) {
      // Mixed types cannot share one fused matrix: bring all three to q8_0.
      for (QuantizedMatrix* m : {&wq, &wk, &wv}) {
        if (m->type() == QuantType::kQ8_0) continue;
        const at::Tensor dense = m->Dequantize();
        CTXMEM_ASSIGN_OR_RETURN(
            *m, QuantizedMatrix::QuantizeQ8_0(dense.data_ptr<float>(), m->rows(), m->cols()));
      }
    }
    const QuantizedMatrix* qkv[] = {&wq, &wk, &wv};
    CTXMEM_ASSIGN_OR_RETURN(L.qkv, QuantizedMatrix::ConcatRows(qkv));
    if (c.qkv_bias) {
      CTXMEM_ASSIGN_OR_RETURN(std::vector<float> bq, Vector(file, b + "attn_q.bias", q_dim, true));
      CTXMEM_ASSIGN_OR_RETURN(std::vector<float> bk, Vector(file, b + "attn_k.bias", kv_dim, true));
      CTXMEM_ASSIGN_OR_RETURN(std::vector<float> bv, Vector(file, b + "attn_v.bias", kv_dim, true));
      if (permute) {
        std::vector<float> tq(q_dim), tk(kv_dim);
        for (int64_t r = 0; r < q_dim; ++r) tq[r] = bq[q_perm[r]];
        for (int64_t r = 0; r < kv_dim; ++r) tk[r] = bk[k_perm[r]];
        bq.swap(tq);
        bk.swap(tk);
      }
      L.bqkv = bq;
      L.bqkv.insert(L.bqkv.end(), bk.begin(), bk.end());
      L.bqkv.insert(L.bqkv.end(), bv.begin(), bv.end());
    }
    CTXMEM_ASSIGN_OR_RETURN(L.o, Matrix(file, b + "attn_output.weight", h, q_dim));
    CTXMEM_ASSIGN_OR_RETURN(QuantizedMatrix gate, Matrix(file, b + "ffn_gate.weight", c.ffn, h));
    CTXMEM_ASSIGN_OR_RETURN(QuantizedMatrix up, Matrix(file, b + "ffn_up.weight", c.ffn, h));
    if (gate.type() != up.type()) {
      for (QuantizedMatrix* m : {&gate, &up}) {
        if (m->type() == QuantType::kQ8_0) continue;
        const at::Tensor dense = m->Dequantize();
        CTXMEM_ASSIGN_OR_RETURN(
            *m, QuantizedMatrix::QuantizeQ8_0(dense.data_ptr<float>(), m->rows(), m->cols()));
      }
    }
    const QuantizedMatrix* gu[] = {&gate, &up};
    CTXMEM_ASSIGN_OR_RETURN(L.gate_up, QuantizedMatrix::ConcatRows(gu));
    CTXMEM_ASSIGN_OR_RETURN(L.down, Matrix(file, b + "ffn_down.weight", h, c.ffn));
    p->bytes += L.qkv.bytes() + L.o.bytes() + L.gate_up.bytes() + L.down.bytes();
    p->layers.push_back(std::move(L));
  }
  p->bytes += p->lm_head.bytes();
  return p;
}

}  // namespace ctxmem::model
