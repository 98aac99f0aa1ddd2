#include "common/model/dense_ops.h"

#include <ATen/ATen.h>

namespace ctxmem::model {

at::Tensor DenseLinearFrom(const at::Tensor& xw, const at::Tensor& w, const at::Tensor& b) {
  auto y = b.defined() ? at::linear(xw, w, b.to(w.scalar_type())) : at::linear(xw, w);
  return y.to(at::kFloat);
}

at::Tensor DenseLinear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (w.scalar_type() != x.scalar_type()) {
    return DenseLinearFrom(x.to(w.scalar_type()), w, b).to(x.scalar_type());
  }
  return b.defined() ? at::linear(x, w, b) : at::linear(x, w);
}

at::Tensor DenseNorm(const ModelConfig& config, const at::Tensor& x, const at::Tensor& w,
                     const at::Tensor& b) {
  if (config.layer_norm) return at::layer_norm(x, {config.hidden}, w, b, config.norm_eps);
  auto xf = x.to(at::kFloat);
  auto y = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + config.norm_eps);
  return w * y.to(x.scalar_type());
}

}  // namespace ctxmem::model
