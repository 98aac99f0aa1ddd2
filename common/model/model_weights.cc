#include "common/model/model_weights.h"

#include <ATen/ATen.h>

#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/model/torch_call.h"
#include "common/status.h"
#include "common/weights/gguf_file.h"
#include "common/weights/safetensors_file.h"

namespace ctxmem::model {
namespace {

// Reads a named tensor as fp32 with the expected shape; `required=false` gives an undefined
// tensor when absent. Shared by both file formats through `read`.
using RawReader = std::function<absl::StatusOr<at::Tensor>(const std::string& name, bool* found)>;

absl::StatusOr<at::Tensor> Fetch(const RawReader& read, const std::string& source,
                                 const std::string& name, std::vector<int64_t> shape,
                                 bool required) {
  bool found = false;
  CTXMEM_ASSIGN_OR_RETURN(at::Tensor t, read(name, &found));
  if (!found) {
    if (!required) return at::Tensor();
    return absl::InvalidArgumentError(absl::StrCat(source, ": missing tensor '", name, "'"));
  }
  if (t.sizes().vec() != shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": tensor '", name, "' has shape [", absl::StrJoin(t.sizes().vec(), ", "),
        "], expected [", absl::StrJoin(shape, ", "), "]"));
  }
  return t;
}

absl::StatusOr<ModelWeights> LoadAll(const RawReader& read, const std::string& source,
                                     const ModelConfig& c, const WeightLoadOptions& options,
                                     bool gguf) {
  ModelWeights w;
  const int64_t h = c.hidden;
  const int64_t q_dim = c.n_heads * c.head_dim;
  const int64_t kv_dim = c.n_kv_heads * c.head_dim;
  const bool neox = c.arch == Arch::kGptNeox;
  auto fetch = [&](const std::string& name, std::vector<int64_t> shape, bool required) {
    return Fetch(read, source, name, std::move(shape), required);
  };

  // Per-format tensor names (GGUF: llama.cpp's; HF: transformers').
  auto L = [&](int64_t i, const char* gguf_role, const char* hf_role) {
    return gguf ? absl::StrCat("blk.", i, ".", gguf_role)
                : absl::StrCat(neox ? "gpt_neox.layers." : "model.layers.", i, ".", hf_role);
  };
  CTXMEM_ASSIGN_OR_RETURN(
      w.tok_embd, fetch(gguf ? "token_embd.weight"
                             : (neox ? "gpt_neox.embed_in.weight" : "model.embed_tokens.weight"),
                        {c.n_vocab, h}, true));
  const std::string out_norm =
      gguf ? "output_norm" : (neox ? "gpt_neox.final_layer_norm" : "model.norm");
  CTXMEM_ASSIGN_OR_RETURN(w.out_norm_w, fetch(out_norm + ".weight", {h}, true));
  CTXMEM_ASSIGN_OR_RETURN(w.out_norm_b, fetch(out_norm + ".bias", {h}, c.layer_norm));
  const std::string head = gguf ? "output.weight" : (neox ? "embed_out.weight" : "lm_head.weight");
  CTXMEM_ASSIGN_OR_RETURN(w.lm_head, fetch(head, {c.n_vocab, h}, !c.tied_embeddings));
  if (!w.lm_head.defined()) w.lm_head = w.tok_embd;

  for (int64_t i = 0; i < c.n_layers; ++i) {
    LayerWeights lw;
    CTXMEM_ASSIGN_OR_RETURN(lw.attn_norm_w,
                            fetch(L(i, "attn_norm.weight", "input_layernorm.weight"), {h}, true));
    CTXMEM_ASSIGN_OR_RETURN(
        lw.ffn_norm_w,
        fetch(L(i, "ffn_norm.weight", "post_attention_layernorm.weight"), {h}, true));
    if (c.layer_norm) {
      CTXMEM_ASSIGN_OR_RETURN(lw.attn_norm_b,
                              fetch(L(i, "attn_norm.bias", "input_layernorm.bias"), {h}, true));
      CTXMEM_ASSIGN_OR_RETURN(
          lw.ffn_norm_b, fetch(L(i, "ffn_norm.bias", "post_attention_layernorm.bias"), {h}, true));
    }
    if (neox) {
      // Fused QKV. HF keeps it per head as [n_heads, 3, head_dim]; llama.cpp's converter
      // reorders it to [q; k; v] blocks.
      CTXMEM_ASSIGN_OR_RETURN(
          at::Tensor wqkv,
          fetch(L(i, "attn_qkv.weight", "attention.query_key_value.weight"), {3 * h, h}, true));
      CTXMEM_ASSIGN_OR_RETURN(
          at::Tensor bqkv,
          fetch(L(i, "attn_qkv.bias", "attention.query_key_value.bias"), {3 * h}, true));
      if (gguf) {
        auto ws = wqkv.chunk(3, 0);
        auto bs = bqkv.chunk(3, 0);
        lw.wq = ws[0], lw.wk = ws[1], lw.wv = ws[2];
        lw.bq = bs[0], lw.bk = bs[1], lw.bv = bs[2];
      } else {
        auto wv = wqkv.view({c.n_heads, 3, c.head_dim, h});  // [n_heads, 3, head_dim, hidden]
        auto bv = bqkv.view({c.n_heads, 3, c.head_dim});     // [n_heads, 3, head_dim]
        lw.wq = wv.select(1, 0).reshape({h, h});
        lw.wk = wv.select(1, 1).reshape({h, h});
        lw.wv = wv.select(1, 2).reshape({h, h});
        lw.bq = bv.select(1, 0).reshape({h});
        lw.bk = bv.select(1, 1).reshape({h});
        lw.bv = bv.select(1, 2).reshape({h});
      }
      CTXMEM_ASSIGN_OR_RETURN(
          lw.wo, fetch(L(i, "attn_output.weight", "attention.dense.weight"), {h, h}, true));
      CTXMEM_ASSIGN_OR_RETURN(lw.bo,
                              fetch(L(i, "attn_output.bias", "attention.dense.bias"), {h}, true));
      CTXMEM_ASSIGN_OR_RETURN(
          lw.w_up, fetch(L(i, "ffn_up.weight", "mlp.dense_h_to_4h.weight"), {c.ffn, h}, true));
      CTXMEM_ASSIGN_OR_RETURN(lw.b_up,
                              fetch(L(i, "ffn_up.bias", "mlp.dense_h_to_4h.bias"), {c.ffn}, true));
      CTXMEM_ASSIGN_OR_RETURN(
          lw.w_down, fetch(L(i, "ffn_down.weight", "mlp.dense_4h_to_h.weight"), {h, c.ffn}, true));
      CTXMEM_ASSIGN_OR_RETURN(lw.b_down,
                              fetch(L(i, "ffn_down.bias", "mlp.dense_4h_to_h.bias"), {h}, true));
    } else {
      CTXMEM_ASSIGN_OR_RETURN(
          lw.wq, fetch(L(i, "attn_q.weight", "self_attn.q_proj.weight"), {q_dim, h}, true));
      CTXMEM_ASSIGN_OR_RETURN(
          lw.wk, fetch(L(i, "attn_k.weight", "self_attn.k_proj.weight"), {kv_dim, h}, true));
      CTXMEM_ASSIGN_OR_RETURN(
          lw.wv, fetch(L(i, "attn_v.weight", "self_attn.v_proj.weight"), {kv_dim, h}, true));
      CTXMEM_ASSIGN_OR_RETURN(
          lw.wo, fetch(L(i, "attn_output.weight", "self_attn.o_proj.weight"), {h, q_dim}, true));
      CTXMEM_ASSIGN_OR_RETURN(
          lw.bq, fetch(L(i, "attn_q.bias", "self_attn.q_proj.bias"), {q_dim}, c.qkv_bias));
      CTXMEM_ASSIGN_OR_RETURN(
          lw.bk, fetch(L(i, "attn_k.bias", "self_attn.k_proj.bias"), {kv_dim}, c.qkv_bias));
      CTXMEM_ASSIGN_OR_RETURN(
          lw.bv, fetch(L(i, "attn_v.bias", "self_attn.v_proj.bias"), {kv_dim}, c.qkv_bias));
      CTXMEM_ASSIGN_OR_RETURN(
          lw.w_gate, fetch(L(i, "ffn_gate.weight", "mlp.gate_proj.weight"), {c.ffn, h}, true));
      CTXMEM_ASSIGN_OR_RETURN(lw.w_up,
                              fetch(L(i, "ffn_up.weight", "mlp.up_proj.weight"), {c.ffn, h}, true));
      CTXMEM_ASSIGN_OR_RETURN(
          lw.w_down, fetch(L(i, "ffn_down.weight", "mlp.down_proj.weight"), {h, c.ffn}, true));
      // llama.cpp permutes q/k rows of llama-arch models only (not qwen2).
      if (gguf && c.arch == Arch::kLlama) {
        lw.wq = UnpermuteGgufQk(lw.wq, c.n_heads);
        lw.wk = UnpermuteGgufQk(lw.wk, c.n_kv_heads);
        if (lw.bq.defined()) lw.bq = UnpermuteGgufQk(lw.bq, c.n_heads);
        if (lw.bk.defined()) lw.bk = UnpermuteGgufQk(lw.bk, c.n_kv_heads);
      }
    }
    w.layers.push_back(std::move(lw));
  }

  // Move to the target device/dtype; contiguous so GEMMs see plain row-major weights. The dtype
  // applies to matrices only: norm weights and biases stay fp32, as the activations they meet.
  auto place = [&](at::Tensor& t) {
    if (!t.defined()) return;
    t = t.to(options.device, t.dim() >= 2 ? options.dtype : at::kFloat).contiguous();
  };
  const bool tied = w.lm_head.is_same(w.tok_embd);
  place(w.tok_embd);
  place(w.out_norm_w);
  place(w.out_norm_b);
  if (tied) {
    w.lm_head = w.tok_embd;
  } else {
    place(w.lm_head);
  }
  for (auto& lw : w.layers) {
    for (at::Tensor* t : {&lw.attn_norm_w, &lw.attn_norm_b, &lw.wq, &lw.bq, &lw.wk, &lw.bk, &lw.wv,
                          &lw.bv, &lw.wo, &lw.bo, &lw.ffn_norm_w, &lw.ffn_norm_b, &lw.w_gate,
                          &lw.w_up, &lw.b_up, &lw.w_down, &lw.b_down}) {
      place(*t);
    }
  }
  return w;
}

}  // namespace

at::Tensor UnpermuteGgufQk(const at::Tensor& w, int64_t n_heads) {
  auto sizes = w.sizes().vec();
  const int64_t rows = sizes[0];
  std::vector<int64_t> view = {n_heads, rows / n_heads / 2, 2};
  view.insert(view.end(), sizes.begin() + 1, sizes.end());
  // [n_heads, head_dim/2, 2, ...] -> [n_heads, 2, head_dim/2, ...] -> [rows, ...]
  return w.reshape(view).transpose(1, 2).reshape(sizes).contiguous();
}

absl::StatusOr<ModelWeights> LoadWeightsFromGguf(const weights::GgufFile& file,
                                                 const ModelConfig& config,
                                                 const WeightLoadOptions& options) {
  RawReader read = [&](const std::string& name, bool* found) -> absl::StatusOr<at::Tensor> {
    const weights::GgufTensorInfo* info = file.FindTensor(name);
    *found = info != nullptr;
    if (info == nullptr) return at::Tensor();
    at::Tensor t = at::empty(info->shape, at::kFloat);
    CTXMEM_RETURN_IF_ERROR(WithContext(file.ReadTensorF32(*info, t.data_ptr<float>()),
                                       absl::StrCat(file.path(), ": tensor '", name, "'")));
    return t;
  };
  absl::StatusOr<ModelWeights> out;
  CTXMEM_RETURN_IF_ERROR(TorchCall("loading GGUF weights", [&] {
    out = LoadAll(read, file.path(), config, options, /*gguf=*/true);
  }));
  return out;
}

absl::StatusOr<ModelWeights> LoadWeightsFromCheckpoint(const weights::SafetensorsCheckpoint& ckpt,
                                                       const ModelConfig& config,
                                                       const WeightLoadOptions& options) {
  RawReader read = [&](const std::string& name, bool* found) -> absl::StatusOr<at::Tensor> {
    auto entry = ckpt.Find(name);
    *found = entry.file != nullptr;
    if (!*found) return at::Tensor();
    at::Tensor t = at::empty(entry.info->shape, at::kFloat);
    CTXMEM_RETURN_IF_ERROR(WithContext(entry.file->ReadF32(*entry.info, t.data_ptr<float>()),
                                       absl::StrCat(entry.file->path(), ": tensor '", name, "'")));
    return t;
  };
  absl::StatusOr<ModelWeights> out;
  CTXMEM_RETURN_IF_ERROR(TorchCall("loading safetensors weights", [&] {
    out = LoadAll(read, "checkpoint", config, options, /*gguf=*/false);
  }));
  return out;
}

}  // namespace ctxmem::model
