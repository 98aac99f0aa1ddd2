#include "common/eval/memory_probe.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/model/torch_call.h"
#include "common/model/transformer.h"
#include "common/status.h"

// Invariants of MemoryProbe, after every ObserveStep():
//  - data_.chunk_begin is strictly increasing, starts at 0 and has n_steps + 1 entries; every
//    series of every layer has n_steps entries, and retention[t] / distribution[t] have t + 1.
//  - previous_ holds, per layer and kv head, the ascending non-sink stream indices of the last
//    memory observed (the memory's own invariant: entries are in stream order, sinks first).

namespace ctxmem::eval {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Chunk id of stream index `token` given the chunk starts (ascending, first 0).
int64_t ChunkOf(const std::vector<int64_t>& chunk_begin, int64_t token) {
  auto it = std::upper_bound(chunk_begin.begin(), chunk_begin.end(), token);
  return static_cast<int64_t>(it - chunk_begin.begin()) - 1;
}

int64_t IntersectionSize(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  int64_t n = 0;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] < b[j]) {
      ++i;
    } else if (b[j] < a[i]) {
      ++j;
    } else {
      ++n, ++i, ++j;
    }
  }
  return n;
}

double Share(double part, double whole) { return whole > 0 ? part / whole : 0.0; }

// Mean of the non-NaN values, NaN if there are none.
double MeanOfDefined(const std::vector<double>& values) {
  double sum = 0;
  int64_t n = 0;
  for (double v : values) {
    if (!std::isnan(v)) sum += v, ++n;
  }
  return n > 0 ? sum / n : kNaN;
}

nlohmann::json NumberOrNull(double v) {
  return std::isnan(v) ? nlohmann::json() : nlohmann::json(v);
}

nlohmann::json SeriesToJson(const std::vector<double>& series) {
  nlohmann::json j = nlohmann::json::array();
  for (double v : series) j.push_back(NumberOrNull(v));
  return j;
}

nlohmann::json LayerProbeToJson(const LayerProbe& p) {
  nlohmann::json j;
  j["memory_len"] = p.memory_len;
  j["keep_rate"] = SeriesToJson(p.keep_rate);
  j["forgetting"] = SeriesToJson(p.forgetting);
  j["retention"] = nlohmann::json::array();
  for (const auto& row : p.retention) j["retention"].push_back(SeriesToJson(row));
  j["distribution"] = nlohmann::json::array();
  for (const auto& row : p.distribution) j["distribution"].push_back(SeriesToJson(row));
  j["usage_valid"] = SeriesToJson(p.usage_valid);
  j["usage_score"] = SeriesToJson(p.usage_score);
  return j;
}

}  // namespace

absl::Status MemoryProbe::ObserveStep(const compress::Memory& memory,
                                      absl::Span<const MemoryUsage> usage) {
  const int64_t n_layers = static_cast<int64_t>(memory.layers.size());
  const int64_t step = data_.n_steps();
  const int64_t chunk_end = memory.n_tokens;
  if (chunk_end <= data_.chunk_begin.back()) {
    return absl::InvalidArgumentError(absl::StrCat("memory n_tokens=", chunk_end,
                                                   " must exceed the previous step's ",
                                                   data_.chunk_begin.back()));
  }
  if (step > 0 && n_layers != static_cast<int64_t>(data_.layers.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory has ", n_layers, " layers, earlier steps had ", data_.layers.size()));
  }
  if (!usage.empty() && static_cast<int64_t>(usage.size()) != n_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("usage has ", usage.size(), " entries for ", n_layers, " layers"));
  }
  // Non-sink stream indices per layer and head, read back to the CPU first.
  std::vector<std::vector<std::vector<int64_t>>> current(n_layers);
  int64_t n_kv = data_.n_kv_heads;
  for (int64_t l = 0; l < n_layers; ++l) {
    const compress::LayerMemory& layer = memory.layers[l];
    if (layer.len() == 0) continue;
    if (layer.src.dim() != 2 || layer.src.scalar_type() != at::kLong) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer ", l, ": src must be a [n_kv_heads, len] int64 tensor"));
    }
    if (n_kv > 0 && layer.src.size(0) != n_kv) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer ", l, ": ", layer.src.size(0), " kv heads, expected ", n_kv));
    }
    n_kv = layer.src.size(0);
    at::Tensor src;
    CTXMEM_RETURN_IF_ERROR(model::TorchCall("probe src", [&] {
      src = layer.src.to(at::kCPU).contiguous();  // [n_kv_heads, len] int64
    }));
    const int64_t len = src.size(1);
    const int64_t* p = src.data_ptr<int64_t>();
    current[l].resize(n_kv);
    for (int64_t h = 0; h < n_kv; ++h) {
      const int64_t begin = std::min(memory.n_sinks, len);
      current[l][h].assign(p + h * len + begin, p + (h + 1) * len);
    }
  }

  data_.n_kv_heads = n_kv;
  data_.n_sinks = memory.n_sinks;
  data_.fused_entries = data_.fused_entries || memory.fused;
  data_.chunk_begin.push_back(chunk_end);
  data_.layers.resize(n_layers);
  const std::vector<int64_t>& bounds = data_.chunk_begin;
  // Non-sink tokens of every chunk so far (a chunk's share of sinks is not in any memory count).
  std::vector<double> chunk_tokens(step + 1);
  for (int64_t j = 0; j <= step; ++j) {
    chunk_tokens[j] = static_cast<double>(
        std::max<int64_t>(0, bounds[j + 1] - std::max(bounds[j], memory.n_sinks)));
  }
  for (int64_t l = 0; l < n_layers; ++l) {
    LayerProbe& probe = data_.layers[l];
    const int64_t heads = static_cast<int64_t>(current[l].size());
    std::vector<double> per_chunk(step + 1, 0.0);  // entries summed over heads
    double entries = 0, kept_before = 0;
    for (int64_t h = 0; h < heads; ++h) {
      const std::vector<int64_t>& now = current[l][h];
      for (int64_t token : now) per_chunk[std::max<int64_t>(0, ChunkOf(bounds, token))] += 1;
      entries += static_cast<double>(now.size());
      if (l < static_cast<int64_t>(previous_.size()) &&
          h < static_cast<int64_t>(previous_[l].size())) {
        kept_before += static_cast<double>(IntersectionSize(previous_[l][h], now));
      }
    }
    const double denom_heads = heads > 0 ? static_cast<double>(heads) : 1.0;
    probe.memory_len.push_back(memory.layers[l].len());
    probe.keep_rate.push_back(Share(kept_before, entries));
    probe.forgetting.push_back(Share(per_chunk[0], entries));
    std::vector<double> retention(step + 1), distribution(step + 1);
    for (int64_t j = 0; j <= step; ++j) {
      distribution[j] = per_chunk[j] / denom_heads;
      retention[j] = Share(per_chunk[j], chunk_tokens[j] * denom_heads);
    }
    probe.retention.push_back(std::move(retention));
    probe.distribution.push_back(std::move(distribution));
    probe.usage_valid.push_back(usage.empty() ? kNaN : usage[l].valid);
    probe.usage_score.push_back(usage.empty() ? kNaN : usage[l].score);
  }
  previous_ = std::move(current);
  return absl::OkStatus();
}

ProbeData MemoryProbe::Finish() && {
  ProbeData data = std::move(data_);
  const int64_t n_steps = data.n_steps();
  LayerProbe& mean = data.mean;
  mean = {};
  if (data.layers.empty()) return data;
  const double n_layers = static_cast<double>(data.layers.size());
  mean.memory_len = data.layers[0].memory_len;
  for (int64_t t = 0; t < n_steps; ++t) {
    double keep = 0, forget = 0;
    std::vector<double> retention(t + 1, 0.0), distribution(t + 1, 0.0), valid, score;
    for (const LayerProbe& p : data.layers) {
      keep += p.keep_rate[t];
      forget += p.forgetting[t];
      for (int64_t j = 0; j <= t; ++j) {
        retention[j] += p.retention[t][j] / n_layers;
        distribution[j] += p.distribution[t][j] / n_layers;
      }
      valid.push_back(p.usage_valid[t]);
      score.push_back(p.usage_score[t]);
    }
    mean.keep_rate.push_back(keep / n_layers);
    mean.forgetting.push_back(forget / n_layers);
    mean.retention.push_back(std::move(retention));
    mean.distribution.push_back(std::move(distribution));
    mean.usage_valid.push_back(MeanOfDefined(valid));
    mean.usage_score.push_back(MeanOfDefined(score));
  }
  return data;
}

absl::StatusOr<MemoryUsage> MeasureMemoryUsage(const at::Tensor& scores, int64_t n_sinks,
                                               int64_t n_memory, int64_t n_rep) {
  if (!scores.defined() || scores.dim() != 3 || scores.size(1) < 1) {
    return absl::InvalidArgumentError("scores must be [n_kv_heads, n_rows >= 1, n_keys]");
  }
  if (n_sinks < 0 || n_memory < n_sinks || n_memory > scores.size(2) || n_rep < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("need 0 <= n_sinks=", n_sinks, " <= n_memory=", n_memory,
                     " <= n_keys=", scores.size(2), " and n_rep=", n_rep, " >= 1"));
  }
  if (n_memory == n_sinks) return MemoryUsage{kNaN, kNaN};
  MemoryUsage usage;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("memory usage", [&] {
    const at::Tensor s = scores.to(at::kFloat);
    const int64_t n_rows = s.size(1);
    at::Tensor per_key = s.sum(1).div(static_cast<double>(n_rows));  // [n_kv_heads, n_keys]
    const double overall = per_key.mean().item<double>();
    at::Tensor memory = per_key.narrow(1, n_sinks, n_memory - n_sinks);  // [n_kv, n_mem]
    usage.valid = memory.gt(overall).to(at::kDouble).mean().item<double>();
    usage.score = memory.mean().item<double>() / static_cast<double>(n_rep);
  }));
  return usage;
}

absl::StatusOr<ProbeRun> CompressAndProbe(const model::Transformer& model,
                                          compress::TokenSource& source,
                                          const compress::CompressionConfig& config,
                                          const ProbeOptions& options,
                                          const compress::CompressHooks& hooks) {
  const model::ModelConfig& mc = model.config();
  const int64_t n_rep = mc.n_heads / std::max<int64_t>(1, mc.n_kv_heads);
  MemoryProbe probe;
  std::vector<MemoryUsage> usage;  // this step's, per layer
  compress::CompressHooks probing = hooks;
  if (options.attention_usage) {
    probing.on_layer_scores = [&](const compress::LayerScores& s) -> absl::Status {
      CTXMEM_ASSIGN_OR_RETURN(
          MemoryUsage u, MeasureMemoryUsage(*s.scores, s.memory->n_sinks, s.memory->len(), n_rep));
      usage.push_back(u);
      return hooks.on_layer_scores ? hooks.on_layer_scores(s) : absl::OkStatus();
    };
  }
  probing.on_memory = [&](int64_t step, const compress::Memory& memory) -> absl::Status {
    CTXMEM_RETURN_IF_ERROR(WithContext(probe.ObserveStep(memory, usage), "probe"));
    usage.clear();
    return hooks.on_memory ? hooks.on_memory(step, memory) : absl::OkStatus();
  };
  ProbeRun run;
  CTXMEM_ASSIGN_OR_RETURN(run.result, compress::Compress(model, source, config, probing));
  run.probe = std::move(probe).Finish();
  return run;
}

nlohmann::json ProbeDataToJson(const ProbeData& data) {
  nlohmann::json j;
  j["n_steps"] = data.n_steps();
  j["n_layers"] = data.layers.size();
  j["n_kv_heads"] = data.n_kv_heads;
  j["n_sinks"] = data.n_sinks;
  j["fused_entries"] = data.fused_entries;
  j["chunk_begin"] = data.chunk_begin;
  j["mean"] = LayerProbeToJson(data.mean);
  j["layers"] = nlohmann::json::array();
  for (const LayerProbe& p : data.layers) j["layers"].push_back(LayerProbeToJson(p));
  return j;
}

}  // namespace ctxmem::eval
