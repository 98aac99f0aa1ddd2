#include "common/compress/memory_state.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/compress/fuser.h"
#include "common/compress/memory_schedule.h"
#include "common/compress/top_k.h"
#include "common/model/torch_call.h"
#include "common/status.h"

// Invariants, after every Append() (checked by memory_state_test):
//  - Every layer of visible_ holds the same number of entries per kv head, and within a head
//    the entries' src are strictly increasing (stream order, §2 "sort").
//  - The first visible_.n_sinks entries of every head are stream tokens 0..n_sinks-1, with
//    n_sinks = min(config.n_sink_tokens, visible_.n_tokens) (§12.12); local_window has no
//    entries at all (§12.11).
//  - Non-sink entries per head <= M = config.memory_size for every memory type (hidden_ too),
//    except no_compress, whose memory is the whole context (§3.8).
//  - Under DOUBLE_COMPRESS the visible non-sink entries are a subset of hidden_ of at most cc.
//  - With a fuser (carry() = kFused, spec §7) the same counts hold; entries after the sinks are
//    synthetic (src = the newest token each summarises, still strictly increasing) and
//    visible_.fused is true.

namespace ctxmem::compress {
namespace {

// Narrow/cat that pass undefined tensors through: a chunk's entries may come without k and v
// when only a selection is wanted (SelectLayer).
at::Tensor NarrowIf(const at::Tensor& t, int64_t begin, int64_t len) {
  return t.defined() ? t.narrow(1, begin, len) : t;
}
at::Tensor CatIf(const at::Tensor& a, const at::Tensor& b) {
  return a.defined() && b.defined() ? at::cat({a, b}, 1) : at::Tensor();
}

LayerMemory Slice(const LayerMemory& m, int64_t begin, int64_t len) {
  if (len <= 0 || m.len() == 0) return {};
  return {NarrowIf(m.k, begin, len), NarrowIf(m.v, begin, len), m.src.narrow(1, begin, len),
          m.rank.narrow(1, begin, len)};
}

LayerMemory Concat(const LayerMemory& a, const LayerMemory& b) {
  if (a.len() == 0) return b;
  if (b.len() == 0) return a;
  return {CatIf(a.k, b.k), CatIf(a.v, b.v), at::cat({a.src, b.src}, 1),
          at::cat({a.rank, b.rank}, 1)};
}

// Entries `indices` [n_kv_heads, k] of each head, with their new `rank` [n_kv_heads, k].
LayerMemory Gather(const LayerMemory& m, const at::Tensor& indices, const at::Tensor& rank) {
  if (indices.size(1) == 0) return {};
  auto rows = indices.unsqueeze(-1).expand({-1, -1, m.k.size(2)});  // [n_kv_heads, k, head_dim]
  return {m.k.gather(1, rows), m.v.gather(1, rows), m.src.gather(1, indices), rank};
}

// Chunk tokens [seen, seen + q) as entries: src their stream indices, rank 0.
LayerMemory FreshEntries(const at::Tensor& k, const at::Tensor& v, int64_t n_kv, int64_t seen,
                         int64_t q, c10::Device device) {
  const auto opts = at::TensorOptions().device(device);
  return {k, v, at::arange(seen, seen + q, opts.dtype(at::kLong)).unsqueeze(0).expand({n_kv, q}),
          at::zeros({n_kv, q}, opts.dtype(at::kFloat))};  // src, rank: [n_kv_heads, q]
}

}  // namespace

absl::StatusOr<MemoryState> MemoryState::Create(const CompressionConfig& config,
                                                const ChunkPlan& plan, const Pruner& pruner,
                                                int64_t n_layers) {
  if (n_layers < 1) {
    return absl::InvalidArgumentError(absl::StrCat("n_layers=", n_layers, " must be >= 1"));
  }
  MemoryState state;
  state.config_ = config;
  state.n_steps_ = plan.n_steps();
  state.pruner_ = &pruner;
  state.visible_.position_mode = config.position_mode;
  state.visible_.layers.resize(n_layers);
  if (config.memory_type == MemoryType::kDoubleCompress) state.hidden_.resize(n_layers);
  return state;
}

absl::Status MemoryState::Restore(Memory memory, std::vector<LayerMemory> hidden) {
  const size_t n_layers = visible_.layers.size();
  if (memory.layers.size() != n_layers) {
    return absl::InvalidArgumentError(absl::StrCat("base memory has ", memory.layers.size(),
                                                   " layers, the model has ", n_layers));
  }
  if (memory.position_mode != config_.position_mode) {
    return absl::InvalidArgumentError(absl::StrCat(
        "base memory has position_mode ", std::string(PositionModeName(memory.position_mode)),
        ", the config ", std::string(PositionModeName(config_.position_mode))));
  }
  if (hidden.size() != hidden_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("base memory has a hidden store of ", hidden.size(), " layers; memory type ",
                     std::string(MemoryTypeName(config_.memory_type)), " needs ", hidden_.size()));
  }
  const int64_t want_sinks = pruner_->carry() == MemoryCarry::kNothing
                                 ? 0
                                 : std::min(config_.n_sink_tokens, memory.n_tokens);
  if (memory.n_tokens < 1 || (memory.len() > 0 && memory.n_sinks != want_sinks)) {
    return absl::InvalidArgumentError(absl::StrCat("base memory has n_tokens=", memory.n_tokens,
                                                   " and n_sinks=", memory.n_sinks,
                                                   "; the config keeps ", want_sinks, " sinks"));
  }
  visible_ = std::move(memory);
  hidden_ = std::move(hidden);
  return absl::OkStatus();
}

int64_t MemoryState::hidden_len() const { return hidden_.empty() ? 0 : hidden_[0].len(); }

int64_t MemoryState::Target(int64_t step, bool is_last) const {
  const int64_t m = config_.memory_size;
  switch (config_.memory_type) {
    case MemoryType::kFm:
      return m;
    case MemoryType::kIm:
      return is_last ? m : IncrementalMemoryTarget(config_.schedule, step, n_steps_, m);
    case MemoryType::kFixedIncremental:
      return FixedIncrementalShare(step, n_steps_, m);
    case MemoryType::kDoubleCompress:
      return std::min(m, config_.double_compress_size * (step + 1));
  }
  return m;
}

MemoryState::Candidates MemoryState::LayerCandidates(int64_t layer, int64_t step, bool is_last,
                                                     const LayerMemory& fresh) const {
  const LayerMemory& visible = visible_.layers[layer];
  const int64_t n_kv = fresh.src.size(0);
  const int64_t q = fresh.len();
  const int64_t past = visible.len();
  Candidates c;
  c.all = Concat(visible, fresh);  // [sinks ; memory ; chunk]
  c.n_sinks = std::min(config_.n_sink_tokens, visible_.n_tokens + q);
  // FM and IM re-select the whole memory; the other types score only the chunk's tokens.
  const bool reselect =
      config_.memory_type == MemoryType::kFm || config_.memory_type == MemoryType::kIm;
  c.begin = reselect ? c.n_sinks : std::max(past, c.n_sinks);
  c.candidates = Slice(c.all, c.begin, past + q - c.begin);

  PruneInput& in = c.input;
  in.layer = layer;
  in.step = step;
  in.n_kv_heads = n_kv;
  in.target = Target(step, is_last);
  if (reselect) {
    in.n_memory = std::max<int64_t>(0, past - c.n_sinks);
  } else if (config_.memory_type == MemoryType::kDoubleCompress) {
    in.n_memory = hidden_[layer].len();
    in.memory_hidden = true;
    c.candidates = Concat(hidden_[layer], c.candidates);
  }
  in.n_chunk = c.candidates.len() - in.n_memory;
  if (in.n_memory > 0) in.memory_rank = c.candidates.rank.narrow(1, 0, in.n_memory);
  if (c.candidates.len() > 0) {
    in.src = c.candidates.src;
    in.keys = c.candidates.k;  // undefined when `fresh` has no keys
  } else {
    in.src = at::zeros({n_kv, 0}, fresh.src.options());
  }
  return c;
}

absl::StatusOr<Selection> MemoryState::SelectLayer(int64_t layer, int64_t step, bool is_last,
                                                   int64_t q, const at::Tensor& scores) const {
  const int64_t n_layers = static_cast<int64_t>(visible_.layers.size());
  const int64_t past = visible_.len();
  if (layer < 0 || layer >= n_layers || q < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("SelectLayer: layer ", layer, " of ", n_layers, ", q ", q, " (must be >= 1)"));
  }
  if (!scores.defined() || scores.dim() != 3 || scores.size(1) < 1 || scores.size(2) != past + q ||
      (past > 0 && scores.size(0) != visible_.layers[layer].src.size(0))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SelectLayer: layer ", layer, " scores must be [n_kv_heads, n_rows >= 1, ", past + q, "]"));
  }
  Candidates c;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("memory selection", [&] {
    c = LayerCandidates(
        layer, step, is_last,
        FreshEntries({}, {}, scores.size(0), visible_.n_tokens, q, scores.device()));
    c.input.scores = scores.narrow(2, c.begin, past + q - c.begin);  // sink (and D) columns off
  }));
  return pruner_->Select(c.input);
}

absl::Status MemoryState::AppendLayer(int64_t layer, int64_t step, bool is_last,
                                      const ChunkLayer& chunk, LayerMemory* visible,
                                      LayerMemory* hidden) const {
  const int64_t q = chunk.k.size(1);
  const int64_t past = visible->len();
  Candidates c = LayerCandidates(
      layer, step, is_last,
      FreshEntries(chunk.k, chunk.v, chunk.k.size(0), visible_.n_tokens, q, chunk.k.device()));
  switch (pruner_->carry()) {
    case MemoryCarry::kNothing:
      *visible = {};
      return absl::OkStatus();
    case MemoryCarry::kEverything:
      *visible = std::move(c.all);
      return absl::OkStatus();
    case MemoryCarry::kSelected:
    case MemoryCarry::kFused:  // Append() takes AppendFused() instead
      break;
  }
  Selection selection = chunk.selection;
  if (!selection.indices.defined()) {
    if (pruner_->needs_scores()) {
      c.input.scores = chunk.scores.narrow(2, c.begin, past + q - c.begin);  // sink (and D) off
    }
    CTXMEM_ASSIGN_OR_RETURN(selection, pruner_->Select(c.input));
  }
  LayerMemory kept = Gather(c.candidates, selection.indices, selection.rank);

  switch (config_.memory_type) {
    case MemoryType::kFm:
    case MemoryType::kIm:
      break;
    case MemoryType::kFixedIncremental: {
      // §12.7: old memory frozen, the chunk's share appended, the oldest dropped beyond M.
      kept = Concat(Slice(c.all, c.n_sinks, c.begin - c.n_sinks), kept);
      const int64_t over = kept.len() - config_.memory_size;
      if (over > 0) kept = Slice(kept, over, config_.memory_size);
      break;
    }
    case MemoryType::kDoubleCompress: {
      // §4.4: H_t is the selection; the LLM reads D_t, the cc best-ranked of H_t.
      *hidden = kept;
      if (kept.len() > 0) {
        auto top = TopKIndices(kept.rank, config_.double_compress_size);  // [n_kv_heads, cc]
        kept = Gather(kept, top, kept.rank.gather(1, top));
      }
      break;
    }
  }
  *visible = Concat(Slice(c.all, 0, c.n_sinks), kept);
  return absl::OkStatus();
}

absl::Status MemoryState::AppendFused(int64_t step, bool is_last,
                                      const std::vector<ChunkLayer>& chunk,
                                      std::vector<LayerMemory>* visible,
                                      std::vector<LayerMemory>* hidden) const {
  const auto* fuser = dynamic_cast<const Fuser*>(pruner_);
  if (fuser == nullptr) {
    return absl::InternalError(
        absl::StrCat("method ", std::string(pruner_->name()), " says kFused but is not a Fuser"));
  }
  const int64_t n_layers = static_cast<int64_t>(chunk.size());
  std::vector<Candidates> cands(n_layers);
  std::vector<LayerMemory> candidates(n_layers), prefix(n_layers);
  for (int64_t i = 0; i < n_layers; ++i) {
    const ChunkLayer& ch = chunk[i];
    cands[i] = LayerCandidates(
        i, step, is_last,
        FreshEntries(ch.k, ch.v, ch.k.size(0), visible_.n_tokens, ch.k.size(1), ch.k.device()));
    candidates[i] = cands[i].candidates;
    // Fixed incremental keeps the frozen memory in front of the chunk's fused share.
    const int64_t keep =
        config_.memory_type == MemoryType::kFixedIncremental ? cands[i].begin : cands[i].n_sinks;
    prefix[i] = Slice(cands[i].all, 0, keep);
  }
  const int64_t target = cands[0].input.target;
  const int64_t n = candidates[0].len();
  std::vector<LayerMemory> fused;
  if (target <= 0 || n == 0) {
    fused.assign(n_layers, LayerMemory{});
  } else if (n <= target) {
    fused = candidates;  // they fit: nothing to fuse (as a pruner keeps everything)
  } else {
    FuseInput in;
    in.step = step;
    in.target = target;
    in.candidates = &candidates;
    in.prefix = &prefix;
    in.model = model_;
    CTXMEM_ASSIGN_OR_RETURN(fused, fuser->Fuse(in));
  }
  for (int64_t i = 0; i < n_layers; ++i) {
    const Candidates& c = cands[i];
    LayerMemory kept = fused[i];
    switch (config_.memory_type) {
      case MemoryType::kFm:
      case MemoryType::kIm:
        break;
      case MemoryType::kFixedIncremental: {
        kept = Concat(Slice(c.all, c.n_sinks, c.begin - c.n_sinks), kept);
        const int64_t over = kept.len() - config_.memory_size;
        if (over > 0) kept = Slice(kept, over, config_.memory_size);
        break;
      }
      case MemoryType::kDoubleCompress: {
        // §7: the LLM reads the last cc entries of the new (fused) hidden store.
        (*hidden)[i] = kept;
        const int64_t cc = std::min(config_.double_compress_size, kept.len());
        kept = Slice(kept, kept.len() - cc, cc);
        break;
      }
    }
    (*visible)[i] = Concat(Slice(c.all, 0, c.n_sinks), kept);
  }
  return absl::OkStatus();
}

absl::Status MemoryState::Append(int64_t step, bool is_last, const std::vector<ChunkLayer>& chunk) {
  const int64_t n_layers = static_cast<int64_t>(visible_.layers.size());
  if (static_cast<int64_t>(chunk.size()) != n_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk has ", chunk.size(), " layers, memory has ", n_layers));
  }
  const bool want_scores = pruner_->needs_scores() && pruner_->carry() == MemoryCarry::kSelected;
  const int64_t past = visible_.len();
  const at::Tensor& k0 = chunk[0].k;
  if (!k0.defined() || k0.dim() != 3 || k0.size(1) < 1) {
    return absl::InvalidArgumentError("chunk layer 0 k must be [n_kv_heads, q >= 1, head_dim]");
  }
  for (int64_t i = 0; i < n_layers; ++i) {
    const ChunkLayer& c = chunk[i];
    const LayerMemory& mem = visible_.layers[i];
    if (!c.k.defined() || c.k.sizes() != k0.sizes() || !c.v.defined() ||
        c.v.sizes() != k0.sizes() ||
        (mem.len() > 0 && (mem.k.size(0) != k0.size(0) || mem.k.size(2) != k0.size(2)))) {
      return absl::InvalidArgumentError(absl::StrCat("chunk layer ", i, ": k and v must be [",
                                                     k0.size(0), ", ", k0.size(1), ", ", k0.size(2),
                                                     "] like layer 0 and the memory"));
    }
    if (c.selection.indices.defined()) {
      const at::Tensor& idx = c.selection.indices;
      if (idx.dim() != 2 || idx.size(0) != k0.size(0) || !c.selection.rank.defined() ||
          c.selection.rank.sizes() != idx.sizes()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "chunk layer ", i, ": selection must be indices and rank [", k0.size(0), ", k]"));
      }
    } else if (want_scores &&
               (!c.scores.defined() || c.scores.dim() != 3 || c.scores.size(0) != k0.size(0) ||
                c.scores.size(1) < 1 || c.scores.size(2) != past + k0.size(1))) {
      return absl::InvalidArgumentError(
          absl::StrCat("chunk layer ", i, ": pruner ", std::string(pruner_->name()),
                       " needs scores [", k0.size(0), ", n_rows >= 1, ", past + k0.size(1), "]"));
    }
  }
  std::vector<LayerMemory> next_visible = visible_.layers;
  std::vector<LayerMemory> next_hidden = hidden_;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("memory update", [&]() -> absl::Status {
    if (pruner_->carry() == MemoryCarry::kFused) {
      return AppendFused(step, is_last, chunk, &next_visible, &next_hidden);
    }
    for (int64_t i = 0; i < n_layers; ++i) {
      CTXMEM_RETURN_IF_ERROR(AppendLayer(i, step, is_last, chunk[i], &next_visible[i],
                                         next_hidden.empty() ? nullptr : &next_hidden[i]));
    }
    return absl::OkStatus();
  }));
  const int64_t n_tokens = visible_.n_tokens + k0.size(1);
  visible_.layers = std::move(next_visible);
  hidden_ = std::move(next_hidden);
  visible_.n_tokens = n_tokens;
  visible_.fused = pruner_->carry() == MemoryCarry::kFused;
  visible_.n_sinks =
      pruner_->carry() == MemoryCarry::kNothing ? 0 : std::min(config_.n_sink_tokens, n_tokens);
  return absl::OkStatus();
}

Memory MemoryState::TakeMemory() && { return std::move(visible_); }

}  // namespace ctxmem::compress
