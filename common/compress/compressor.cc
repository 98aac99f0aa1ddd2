#include "common/compress/compressor.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/tensor.h>

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/compress/chunk_reader.h"
#include "common/compress/memory_state.h"
#include "common/compress/pruner_registry.h"
#include "common/learned/rcc_compressor.h"
#include "common/model/torch_call.h"
#include "common/model/transformer.h"
#include "common/status.h"

namespace ctxmem::compress {
namespace {

// Compress and CompressAppend: `base` null = from the first token.
absl::StatusOr<CompressResult> Run(const model::Transformer& model, TokenSource& source,
                                   const CompressionConfig& config, const ResumableMemory* base,
                                   const CompressHooks& hooks) {
  // RCC builds its memory with its own encoder/decoder passes (docs/rcc.md).
  if (config.pruner == "rcc") return learned::RccCompress(model, source, config, base, hooks);
  CTXMEM_RETURN_IF_ERROR(config.Validate());
  CTXMEM_ASSIGN_OR_RETURN(std::unique_ptr<Pruner> pruner, PrunerRegistry::Global().Create(config));
  CompressResult result;
  if (base == nullptr) {
    CTXMEM_ASSIGN_OR_RETURN(result.plan, ChunkPlan::Create(config, source.total_length()));
  } else {
    // The base's plan, continued: its length decides IM targets, shares and IMDC sizes.
    CompressionConfig plan_config = config;
    plan_config.expected_length = 0;
    CTXMEM_ASSIGN_OR_RETURN(result.plan,
                            ChunkPlan::Create(plan_config, base->state.planned_length));
  }
  const model::ModelConfig& mc = model.config();
  CTXMEM_ASSIGN_OR_RETURN(MemoryState state,
                          MemoryState::Create(config, result.plan, *pruner, mc.n_layers));
  state.set_model(&model);
  const int64_t first_step = base == nullptr ? 0 : base->state.n_steps_done;
  if (base != nullptr) {
    if (first_step < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("base memory has n_steps_done=", first_step, "; must be >= 1"));
    }
    CTXMEM_RETURN_IF_ERROR(
        WithContext(state.Restore(base->memory, base->state.hidden), "base memory"));
  }

  model::ForwardOptions options;
  options.logits = hooks.on_chunk_logits ? model::LogitsMode::kAll : model::LogitsMode::kNone;
  options.return_pre_rope_keys = true;
  const bool pruner_scores = pruner->needs_scores() && pruner->carry() == MemoryCarry::kSelected;
  if (pruner_scores) {
    options.score_rows = config.score_mode == ScoreMode::kExact ? model::ScoreRows::kAll
                                                                : model::ScoreRows::kLastWindow;
    options.score_window = config.score_window;
  } else if (hooks.on_layer_scores) {
    options.score_rows = model::ScoreRows::kAll;
  }
  // Selections made inside the forward, one layer's scores at a time (see SelectLayer).
  std::vector<Selection> selections(mc.n_layers);

  ChunkReader reader(source);
  std::vector<int32_t> ids;
  const auto long_opts = at::TensorOptions().dtype(at::kLong);
  for (int64_t step = first_step;; ++step) {
    if (hooks.should_stop && hooks.should_stop()) {
      return absl::CancelledError(absl::StrCat("compression stopped after ", step - first_step,
                                               " chunks (", state.visible().n_tokens, " tokens)"));
    }
    bool is_last = false;
    CTXMEM_RETURN_IF_ERROR(
        WithContext(reader.Next(result.plan.chunk_size(step), &ids, &is_last), "token source"));
    if (ids.empty()) break;
    const int64_t q = static_cast<int64_t>(ids.size());
    const Memory& memory = state.visible();
    Memory transformed;
    if (hooks.past_transform && !memory.empty()) {
      CTXMEM_ASSIGN_OR_RETURN(transformed, hooks.past_transform(memory));
    }
    CTXMEM_ASSIGN_OR_RETURN(model::KvCache past,
                            ToKvCache(transformed.empty() ? memory : transformed, model));
    at::Tensor tokens, positions;  // [1, q] int64
    CTXMEM_RETURN_IF_ERROR(model::TorchCall("chunk tensors", [&] {
      tokens = at::tensor(ids, at::kInt).to(at::kLong).unsqueeze(0);
      // §6 / §12.10: slots continue after the memory, original positions are stream indices.
      positions = at::arange(past.next_position, past.next_position + q, long_opts).unsqueeze(0);
    }));
    // This chunk's options: the score callback below borrows this iteration's locals.
    model::ForwardOptions chunk_options = options;
    if (options.score_rows != model::ScoreRows::kNone) {
      chunk_options.on_layer_scores = [&](int64_t layer,
                                          const at::Tensor& batch_scores) -> absl::Status {
        const at::Tensor scores = batch_scores[0];  // [n_kv_heads, n_rows, memory.len() + q]
        if (hooks.on_layer_scores) {
          CTXMEM_RETURN_IF_ERROR(hooks.on_layer_scores(LayerScores{step, layer, &memory, &scores}));
        }
        if (!pruner_scores) return absl::OkStatus();
        CTXMEM_ASSIGN_OR_RETURN(selections[layer],
                                state.SelectLayer(layer, step, is_last, q, scores));
        return absl::OkStatus();
      };
    }
    CTXMEM_ASSIGN_OR_RETURN(model::ForwardResult out,
                            model.Forward(tokens, positions, &past, chunk_options));
    std::vector<ChunkLayer> layers(mc.n_layers);
    for (int64_t i = 0; i < mc.n_layers; ++i) {
      layers[i].k = out.k_pre_rope[i][0];  // [n_kv_heads, q, head_dim]
      layers[i].v = out.v[i][0];
      if (pruner_scores) layers[i].selection = std::move(selections[i]);
    }
    out.k.clear();  // post-RoPE keys are not needed: free them before compressing
    if (hooks.on_chunk_logits) {
      at::Tensor chunk_tokens = tokens[0];
      at::Tensor chunk_logits = out.logits[0];
      CTXMEM_RETURN_IF_ERROR(
          hooks.on_chunk_logits(ChunkLogits{step, memory.n_tokens, &chunk_tokens, &chunk_logits}));
    }
    CTXMEM_RETURN_IF_ERROR(
        WithContext(state.Append(step, is_last, layers), absl::StrCat("chunk ", step)));
    if (hooks.on_memory) {
      CTXMEM_RETURN_IF_ERROR(WithContext(hooks.on_memory(step, state.visible()), "memory hook"));
    }
    result.n_chunks = step + 1 - first_step;
    if (hooks.on_progress) {
      hooks.on_progress(CompressProgress{step + 1, state.visible().n_tokens, source.total_length(),
                                         state.visible().len()});
    }
    if (is_last) break;
  }
  if (result.n_chunks == 0) return absl::InvalidArgumentError("token source is empty");
  result.state.n_steps_done = first_step + result.n_chunks;
  result.state.planned_length = result.plan.planned_length();
  result.state.has_rank =
      pruner->reads_memory_rank() || config.memory_type == MemoryType::kDoubleCompress;
  result.state.hidden = state.hidden();
  result.memory = std::move(state).TakeMemory();
  return result;
}

}  // namespace

absl::StatusOr<CompressResult> Compress(const model::Transformer& model, TokenSource& source,
                                        const CompressionConfig& config,
                                        const CompressHooks& hooks) {
  return Run(model, source, config, nullptr, hooks);
}

absl::StatusOr<CompressResult> CompressAppend(const model::Transformer& model, TokenSource& source,
                                              const CompressionConfig& config,
                                              const ResumableMemory& base,
                                              const CompressHooks& hooks) {
  return Run(model, source, config, &base, hooks);
}

}  // namespace ctxmem::compress
