#pragma once
// RccBridge: the trained part of RCC (docs/rcc.md, spec rcc.md §1.4): how the encoder's hidden
// states at the slot rows enter the decoder's residual stream. Index l runs over the HF
// hidden-state indices 0..n_layers-1 (l = 0: the token embedding; l = i + 1: after layer i).
// With E_l [batch, S, hidden] the encoder's state l at the slot rows and D_l the decoder's:
//   kPaper     (the paper's): slot rows of the decoder after hook l become
//              P_0(E_0)            for l = 0 (embedding replacement)
//              D_l + P_l(E_l)      for l >= 1 (additive injection after decoder layer l - 1)
//   kResidual  (zero-initialised residual): slot rows become E_l + P_l(E_l) for every l, so
//              with P = 0 the decoder's K/V at the slots are exactly the encoder's at the
//              gather rows: the memory of a stride pruner keeping every r-th token.
// P_l is a Linear(hidden -> hidden, no bias), full rank (w [hidden, hidden], [out, in]) or low
// rank (up [hidden, rank] x down [rank, hidden]). A kResidual bridge of rank 0 holds no tensors
// (the untrained "stride" bridge). There is no injection after the last layer: it changes only
// the logit at the last slot, never the memory's K/V (docs/rcc.md, §7 decisions).
//
// File (safetensors): tensors proj.<l>.weight, or proj.<l>.up and proj.<l>.down, for l =
// 0..n_layers-1 (fp32/fp16/bf16); __metadata__ ctxmem.method = "rcc", rcc.variant = "paper" |
// "residual", rcc.window and rcc.rate (what it was trained with; defaults for the CLI).
// Thread-safety: immutable after Create()/Load() (const methods only); training mutates the
// tensors of its own copy through parameters().

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ctxmem::learned {

enum class RccVariant { kPaper, kResidual };
absl::StatusOr<RccVariant> ParseRccVariant(std::string_view name);  // "paper" | "residual"
std::string_view RccVariantName(RccVariant variant);

struct RccBridgeShape {
  RccVariant variant = RccVariant::kResidual;
  int64_t n_layers = 0;  // the decoder's layers (projections P_0..P_{n_layers-1})
  int64_t hidden = 0;
  int64_t rank = 0;  // 0 = full rank (kResidual with no tensors when made by Stride())
  int64_t window = 512;
  int64_t rate = 16;
};

class RccBridge {
 public:
  // The untrained residual bridge without tensors: memory = every r-th token's KV.
  static RccBridge Stride(int64_t n_layers, int64_t hidden);
  // A fresh bridge: kPaper projections ~ N(0, 0.02) (the paper's HF init; low rank: both
  // factors N(0, 0.02)); kResidual projections zero (low rank: up = 0, down ~ N(0, 1/sqrt(h))).
  // Draws from torch's global generator. InvalidArgument for a bad shape.
  static absl::StatusOr<RccBridge> Create(const RccBridgeShape& shape);
  // Reads a bridge file. NotFound for a missing file; InvalidArgument naming the tensor or key
  // for anything malformed (unknown tensor, missing projection, shapes that disagree, NaN).
  static absl::StatusOr<RccBridge> Load(const std::string& path);
  // Writes the file atomically (fp32, or bf16 when `bf16`); `metadata` adds entries.
  absl::Status Save(const std::string& path, bool bf16 = false,
                    const std::map<std::string, std::string>& metadata = {}) const;

  const RccBridgeShape& shape() const { return shape_; }
  bool has_tensors() const { return !proj_.empty(); }
  // OK when the bridge fits a decoder of n_layers x hidden; InvalidArgument otherwise.
  absl::Status CheckFits(int64_t n_layers, int64_t hidden) const;

  // What the slot rows of the decoder's stream become at hook l (see above): enc, dec
  // [batch, S, hidden] fp32 -> [batch, S, hidden]. Differentiable. May throw (c10::Error).
  at::Tensor SlotStream(int64_t l, const at::Tensor& enc, const at::Tensor& dec) const;

  // The tensors (per l: {weight} or {up, down}) for an optimizer; setting requires_grad on
  // them makes SlotStream differentiable w.r.t. them.
  std::vector<at::Tensor> parameters() const;
  // Moves the tensors to `device` (training on CUDA; inference moves them per call instead).
  void MoveTo(c10::Device device);
  int64_t n_parameters() const;

 private:
  struct Projection {
    at::Tensor weight;  // [hidden, hidden] ([out, in]) or undefined
    at::Tensor up;      // [hidden, rank] or undefined
    at::Tensor down;    // [rank, hidden] or undefined
  };
  at::Tensor Project(int64_t l, const at::Tensor& x) const;

  RccBridgeShape shape_;
  std::vector<Projection> proj_;  // n_layers entries, or none (Stride())
};

}  // namespace ctxmem::learned
