#include "common/compress/pruner.h"

#include <ATen/ops/cat.h>
#include <ATen/ops/empty.h>

#include <limits>

#include "absl/strings/str_cat.h"
#include "common/compress/top_k.h"
#include "common/model/torch_call.h"
#include "common/status.h"

namespace ctxmem::compress {
namespace {

std::string ShapeOf(const at::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::string out = "[";
  for (int64_t i = 0; i < t.dim(); ++i) absl::StrAppend(&out, i > 0 ? ", " : "", t.size(i));
  return out + "]";
}

bool HasShape(const at::Tensor& t, std::initializer_list<int64_t> shape) {
  if (!t.defined() || t.dim() != static_cast<int64_t>(shape.size())) return false;
  int64_t i = 0;
  for (int64_t s : shape) {
    if (s >= 0 && t.size(i) != s) return false;
    ++i;
  }
  return true;
}

absl::Status ValidateInput(const Pruner& pruner, const PruneInput& in) {
  auto bad = [&](auto&&... parts) {
    return absl::InvalidArgumentError(
        absl::StrCat("pruner ", std::string(pruner.name()), ": ", parts...));
  };
  if (in.n_kv_heads < 1) return bad("n_kv_heads=", in.n_kv_heads, " must be >= 1");
  if (in.n_memory < 0 || in.n_chunk < 0 || in.target < 0) {
    return bad("n_memory=", in.n_memory, ", n_chunk=", in.n_chunk, ", target=", in.target,
               " must all be >= 0");
  }
  const int64_t n = in.n_candidates();
  if (!HasShape(in.src, {in.n_kv_heads, n})) {
    return bad("src is ", ShapeOf(in.src), ", expected [", in.n_kv_heads, ", ", n, "]");
  }
  if (in.n_memory > 0 && !HasShape(in.memory_rank, {in.n_kv_heads, in.n_memory})) {
    return bad("memory_rank is ", ShapeOf(in.memory_rank), ", expected [", in.n_kv_heads, ", ",
               in.n_memory, "]");
  }
  if (in.keys.defined() && !HasShape(in.keys, {in.n_kv_heads, n, -1})) {
    return bad("keys is ", ShapeOf(in.keys), ", expected [", in.n_kv_heads, ", ", n, ", head_dim]");
  }
  if (pruner.needs_scores() && n > 0) {
    const int64_t cols = ScoredMemoryColumns(in) + in.n_chunk;
    if (!HasShape(in.scores, {in.n_kv_heads, -1, cols}) || in.scores.size(1) < 1) {
      return bad("scores is ", ShapeOf(in.scores), ", expected [", in.n_kv_heads, ", n_rows >= 1, ",
                 cols, "]");
    }
  }
  return absl::OkStatus();
}

}  // namespace

at::Tensor PrependHiddenMemoryRank(const PruneInput& input, const at::Tensor& scored) {
  if (!input.memory_hidden || input.n_memory == 0) return scored;
  return at::cat({input.memory_rank.to(scored.scalar_type()), scored}, 1);
}

absl::StatusOr<Selection> Pruner::Select(const PruneInput& input) const {
  CTXMEM_RETURN_IF_ERROR(ValidateInput(*this, input));
  Selection out;
  CTXMEM_RETURN_IF_ERROR(
      model::TorchCall(absl::StrCat("pruner ", std::string(name())), [&]() -> absl::Status {
        const int64_t n = input.n_candidates();
        if (n == 0) {
          auto opts = input.src.options();
          out.indices = at::empty({input.n_kv_heads, 0}, opts.dtype(at::kLong));
          out.rank = at::empty({input.n_kv_heads, 0}, opts.dtype(at::kFloat));
          return absl::OkStatus();
        }
        at::Tensor rank = Rank(input).to(at::kFloat);  // [n_kv_heads, n]
        if (!HasShape(rank, {input.n_kv_heads, n})) {
          return absl::InternalError(absl::StrCat("rank is ", ShapeOf(rank), ", expected [",
                                                  input.n_kv_heads, ", ", n, "]"));
        }
        // A NaN would sort above everything; treat it as the least worth keeping.
        rank = rank.masked_fill(rank.isnan(), -std::numeric_limits<float>::infinity());
        out.indices = TopKIndices(rank, input.target);  // [n_kv_heads, k]
        out.rank = rank.gather(1, out.indices);         // [n_kv_heads, k]
        return absl::OkStatus();
      }));
  return out;
}

}  // namespace ctxmem::compress
