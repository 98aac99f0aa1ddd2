#pragma once
// Helpers for the compress tests: small tensors from literals, tensors back to vectors, the
// devices numeric tests run on (STYLE.md rule 40) and a tiny deterministic transformer.

#include <ATen/core/Tensor.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/compress/pruner.h"
#include "common/model/model.h"
#include "common/model/transformer.h"

namespace ctxmem::compress::testing {

// [rows.size(), rows[0].size()] fp32 from nested literals.
inline at::Tensor Mat(const std::vector<std::vector<float>>& rows) {
  std::vector<float> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return at::tensor(flat, at::kFloat)
      .reshape({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())});
}

// A 2-D integer tensor as nested vectors (for EXPECT_EQ with readable failures).
inline std::vector<std::vector<int64_t>> Rows(const at::Tensor& t) {
  auto c = t.to(at::kCPU).to(at::kLong).contiguous();
  std::vector<std::vector<int64_t>> out(c.size(0));
  for (int64_t i = 0; i < c.size(0); ++i) {
    const int64_t* p = c.data_ptr<int64_t>() + i * c.size(1);
    out[i].assign(p, p + c.size(1));
  }
  return out;
}

// Stream indices [first, first + n) for every one of n_kv_heads heads: [n_kv_heads, n] int64.
inline at::Tensor SrcRange(int64_t n_kv_heads, int64_t first, int64_t n) {
  return at::arange(first, first + n, at::kLong).unsqueeze(0).expand({n_kv_heads, n}).contiguous();
}

// The hand-worked example of the pruner tests: 1 kv head, memory entries src {4, 5}, chunk
// candidates src {6, 7, 8}, scored by the chunk's 3 queries (row r sees the memory and chunk
// candidates 0..r). Column sums {0.8, 0.5, 0.7, 0.7, 0.3}; causal counts {3, 3, 3, 2, 1};
// means {0.267, 0.167, 0.233, 0.35, 0.3}. memory_rank {0.1, 0.6}.
inline PruneInput HandExample(int64_t target) {
  PruneInput in;
  in.n_kv_heads = 1;
  in.n_memory = 2;
  in.n_chunk = 3;
  in.target = target;
  in.scores = Mat({{0.5f, 0.3f, 0.2f, 0.0f, 0.0f},
                   {0.1f, 0.1f, 0.4f, 0.4f, 0.0f},
                   {0.2f, 0.1f, 0.1f, 0.3f, 0.3f}})
                  .unsqueeze(0);  // [1, 3, 5]
  in.memory_rank = Mat({{0.1f, 0.6f}});
  in.src = SrcRange(1, 4, 5);
  return in;
}

// Devices numeric tests run on: CPU always, CUDA when this build and machine have it.
inline std::vector<std::string> TestDevices() { return {"cpu", "cuda"}; }
inline bool DeviceAvailable(const std::string& name) { return model::ParseDevice(name).ok(); }
inline c10::Device DeviceOf(const std::string& name) { return *model::ParseDevice(name); }

// Deterministic pseudo-random values in [-scale, scale] without touching torch's RNG.
inline at::Tensor Wave(std::vector<int64_t> shape, double phase, double scale) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return at::arange(n, at::kFloat).mul(0.731).add(phase).sin().mul(scale).reshape(shape);
}

// A 2-layer llama with GQA (4 query heads, 2 kv heads, head_dim 8) and fixed weights.
inline std::unique_ptr<model::Transformer> MakeTinyTransformer(c10::Device device) {
  model::ModelConfig c;
  c.arch = model::Arch::kLlama;
  c.n_layers = 2;
  c.hidden = 32;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 8;
  c.ffn = 48;
  c.n_vocab = 61;
  c.max_positions = 1024;
  c.rope_dim = 8;
  c.norm_eps = 1e-5;
  model::ModelWeights w;
  double phase = 0.1;
  auto next = [&](std::vector<int64_t> shape, double scale = 0.35) {
    phase += 1.37;
    return Wave(std::move(shape), phase, scale).to(device);
  };
  w.tok_embd = next({c.n_vocab, c.hidden}, 1.0);
  w.out_norm_w = at::ones({c.hidden}, at::kFloat).to(device);
  w.lm_head = next({c.n_vocab, c.hidden});
  for (int64_t i = 0; i < c.n_layers; ++i) {
    model::LayerWeights l;
    l.attn_norm_w = at::ones({c.hidden}, at::kFloat).to(device);
    l.ffn_norm_w = at::ones({c.hidden}, at::kFloat).to(device);
    l.wq = next({c.n_heads * c.head_dim, c.hidden}, 0.6);
    l.wk = next({c.n_kv_heads * c.head_dim, c.hidden}, 0.6);
    l.wv = next({c.n_kv_heads * c.head_dim, c.hidden});
    l.wo = next({c.hidden, c.n_heads * c.head_dim});
    l.w_gate = next({c.ffn, c.hidden});
    l.w_up = next({c.ffn, c.hidden});
    l.w_down = next({c.hidden, c.ffn});
    w.layers.push_back(std::move(l));
  }
  return std::make_unique<model::Transformer>(c, std::move(w), device);
}

}  // namespace ctxmem::compress::testing
