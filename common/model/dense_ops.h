#pragma once
// The dense building blocks a transformer layer is made of, shared by the chunk forward
// (Transformer::Forward) and the batched decode step (BatchedDecoder), so both compute the
// same thing: a projection with fp32 activations over fp32/bf16/fp16 weights, and the
// model's norm (LayerNorm, or RMSNorm in fp32 as HF does).
// Thread-safety: free functions on tensors; reentrant.

#include <ATen/core/Tensor.h>

#include "common/model/model_config.h"

namespace ctxmem::model {

// x [..., in] fp32 @ w [out, in]^T (+ b [out]) -> [..., out] fp32. A bf16/fp16 weight gets
// its input cast to its dtype (the GEMM accumulates in fp32 inside oneDNN/cuBLAS) and the
// output cast back, so the residual stream, norms, RoPE and attention stay fp32.
// Differentiable (casts have gradients). `b` may be undefined.
at::Tensor DenseLinear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);

// The same for an input already in w's dtype (one cast of a norm's output then serves several
// projections: q, k and v; gate and up); the result in fp32.
at::Tensor DenseLinearFrom(const at::Tensor& xw, const at::Tensor& w, const at::Tensor& b);

// The model's norm over the last dim of x [..., hidden]: LayerNorm (w, b) for
// config.layer_norm, else RMSNorm in fp32 scaled by w (b unused).
at::Tensor DenseNorm(const ModelConfig& config, const at::Tensor& x, const at::Tensor& w,
                     const at::Tensor& b);

}  // namespace ctxmem::model
