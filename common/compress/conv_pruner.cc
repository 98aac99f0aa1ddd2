#include "common/compress/conv_pruner.h"

#include <ATen/ops/avg_pool1d.h>

#include "absl/strings/str_cat.h"
#include "common/compress/attention_stats.h"

namespace ctxmem::compress {

absl::StatusOr<std::unique_ptr<Pruner>> ConvPruner::Create(int64_t kernel_size) {
  if (kernel_size < 1 || kernel_size % 2 == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("conv_kernel_size=", kernel_size, " must be odd and >= 1 (spec §3.3)"));
  }
  return std::unique_ptr<Pruner>(new ConvPruner(kernel_size));
}

at::Tensor ConvPruner::Rank(const PruneInput& input) const {
  const int64_t n_mem_cols = ScoredMemoryColumns(input);
  auto acc = ColumnSums(input.scores);  // [n_kv_heads, n_cols]
  auto pooled = at::avg_pool1d(acc.unsqueeze(1), {kernel_size_}, {1}, {kernel_size_ / 2},
                               /*ceil_mode=*/false, /*count_include_pad=*/true)
                    .squeeze(1);  // [n_kv_heads, n_cols]
  auto counts =
      CausalQueryCounts(n_mem_cols, input.n_chunk, input.scores.size(1), input.scores.device());
  return PrependHiddenMemoryRank(input, pooled.div(counts));  // normalised after pooling (§3.3)
}

}  // namespace ctxmem::compress
