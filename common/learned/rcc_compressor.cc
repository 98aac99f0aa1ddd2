#include "common/learned/rcc_compressor.h"

#include <ATen/ATen.h>

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/compress/chunk_reader.h"
#include "common/learned/rcc_bridge_registry.h"
#include "common/learned/rcc_model.h"
#include "common/model/torch_call.h"
#include "common/status.h"

namespace ctxmem::learned {

absl::StatusOr<compress::CompressResult> RccCompress(const model::Transformer& model,
                                                     compress::TokenSource& source,
                                                     const compress::CompressionConfig& config,
                                                     const compress::ResumableMemory* base,
                                                     const compress::CompressHooks& hooks) {
  CTXMEM_RETURN_IF_ERROR(config.Validate());
  if (config.pruner != "rcc") {
    return absl::InvalidArgumentError(absl::StrCat("RccCompress with pruner=", config.pruner));
  }
  const model::ModelConfig& mc = model.config();
  CTXMEM_ASSIGN_OR_RETURN(std::shared_ptr<const RccBridge> bridge,
                          FindRccBridge(config.rcc_bridge, mc.n_layers, mc.hidden));
  const int64_t window = config.rcc_window;
  compress::CompressResult result;
  compress::CompressionConfig plan_config = config;  // fixed chunks of one window
  plan_config.chunk_size = window;
  plan_config.memory_type = compress::MemoryType::kFm;
  plan_config.decremental_chunk = false;
  CTXMEM_ASSIGN_OR_RETURN(result.plan, compress::ChunkPlan::Create(plan_config, -1));

  compress::Memory memory;
  memory.position_mode = compress::PositionMode::kSlots;
  memory.n_sinks = 0;
  model::KvCache past;
  int64_t first_step = 0;
  if (base != nullptr) {
    const compress::Memory& bm = base->memory;
    if (bm.n_sinks != 0 || bm.position_mode != compress::PositionMode::kSlots ||
        bm.n_tokens % window != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rcc append needs an rcc base memory of a whole number of windows (rcc_window=", window,
          "); the base has ", bm.n_tokens, " tokens, ", bm.n_sinks, " sinks"));
    }
    CTXMEM_ASSIGN_OR_RETURN(past, compress::ToKvCache(bm, model));
    memory = bm;
    first_step = base->state.n_steps_done;
  }
  compress::ChunkReader reader(source);
  std::vector<int32_t> ids;
  model::ForwardOptions options;
  options.logits = model::LogitsMode::kNone;
  options.return_pre_rope_keys = true;
  options.kv_with_past = true;
  for (int64_t step = first_step;; ++step) {
    if (hooks.should_stop && hooks.should_stop()) {
      return absl::CancelledError(
          absl::StrCat("rcc compression stopped after ", step - first_step, " windows"));
    }
    bool is_last = false;
    CTXMEM_RETURN_IF_ERROR(WithContext(reader.Next(window, &ids, &is_last), "token source"));
    if (ids.empty()) break;
    CTXMEM_ASSIGN_OR_RETURN(RccSlots slots, RccEncode(model, ids, config.rcc_rate));
    CTXMEM_ASSIGN_OR_RETURN(model::ForwardResult out,
                            RccDecode(model, *bridge, slots, {}, &past, options));
    const int64_t window_start = memory.n_tokens;
    CTXMEM_RETURN_IF_ERROR(model::TorchCall("rcc memory", [&] {
      const int64_t s = slots.size();
      at::Tensor src = (at::tensor(slots.rows, at::TensorOptions().dtype(at::kLong)) + window_start)
                           .unsqueeze(0)
                           .expand({mc.n_kv_heads, s});  // [n_kv, S]
      if (memory.layers.empty()) memory.layers.resize(mc.n_layers);
      for (int64_t l = 0; l < mc.n_layers; ++l) {
        compress::LayerMemory& lm = memory.layers[l];
        at::Tensor k = out.k_pre_rope[l][0].to(at::kCPU);  // [n_kv, S, head_dim]
        at::Tensor v = out.v[l][0].narrow(1, out.v[l].size(2) - s, s).to(at::kCPU);
        at::Tensor rank = at::zeros({mc.n_kv_heads, s}, at::TensorOptions().dtype(at::kFloat));
        const bool first = lm.len() == 0;
        lm.k = first ? k.contiguous() : at::cat({lm.k, k}, 1);
        lm.v = first ? v.contiguous() : at::cat({lm.v, v}, 1);
        lm.src = first ? src.contiguous() : at::cat({lm.src, src}, 1);
        lm.rank = first ? rank : at::cat({lm.rank, rank}, 1);
      }
    }));
    past.Extend(std::move(out.k), std::move(out.v));
    memory.n_tokens += static_cast<int64_t>(ids.size());
    ++result.n_chunks;
    if (hooks.on_progress) {
      hooks.on_progress({step + 1, memory.n_tokens, source.total_length(), memory.len()});
    }
    if (is_last) break;
  }
  if (result.n_chunks == 0) return absl::InvalidArgumentError("token source is empty");
  result.state.n_steps_done = first_step + result.n_chunks;
  result.state.planned_length = -1;
  result.state.has_rank = false;
  result.memory = std::move(memory);
  return result;
}

}  // namespace ctxmem::learned
