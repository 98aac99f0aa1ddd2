#include "common/compress/ppl_sweep.h"

#include <ATen/ops/tensor.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/compress/compressor.h"
#include "common/compress/config_json.h"
#include "common/compress/peak_rss.h"
#include "common/compress/pruner_registry.h"
#include "common/compress/token_source.h"
#include "common/model/torch_call.h"
#include "common/status.h"

namespace ctxmem::compress {
namespace {

constexpr const char* kReferencePruner = "no_compress";

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Registry names with aliases folded onto the pruner they make (snapkv -> conv), in registry
// order; names whose factory needs more than the base config (none today) are skipped.
std::vector<std::string> CanonicalPrunerNames(const CompressionConfig& base) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const std::string& name : PrunerRegistry::Global().names()) {
    CompressionConfig c = base;
    c.pruner = name;
    auto pruner = PrunerRegistry::Global().Create(c);
    if (!pruner.ok()) continue;
    std::string canonical((*pruner)->name());
    if (seen.insert(canonical).second) out.push_back(canonical);
  }
  return out;
}

std::string MiB(int64_t bytes) {
  return bytes < 0 ? "?" : absl::StrFormat("%.0f", static_cast<double>(bytes) / (1 << 20));
}

// Reference PPL per chunk size (no_compress rows that ran).
std::map<int64_t, double> ReferencePpl(const PplSweepResult& result) {
  std::map<int64_t, double> ref;
  for (const PplRow& row : result.rows) {
    if (row.reference && row.error.empty()) ref[row.config.chunk_size] = row.ppl;
  }
  return ref;
}

std::string MemoryTypeLabel(const CompressionConfig& c) {
  return std::string(MemoryTypeName(c.memory_type, c.decremental_chunk));
}

}  // namespace

absl::Status PplSweepOptions::Validate() const {
  if (eval_len < 2) {
    return absl::InvalidArgumentError(absl::StrCat("eval_len=", eval_len, " must be >= 2"));
  }
  if (chunk_sizes.empty()) return absl::InvalidArgumentError("chunk_sizes is empty");
  for (int64_t c : chunk_sizes) {
    if (c < 1) return absl::InvalidArgumentError(absl::StrCat("chunk size ", c, " must be >= 1"));
  }
  if (memory_sizes.empty()) return absl::InvalidArgumentError("memory_sizes is empty");
  for (int64_t m : memory_sizes) {
    if (m < 0) return absl::InvalidArgumentError(absl::StrCat("memory size ", m, " must be >= 0"));
  }
  if (memory_types.empty()) return absl::InvalidArgumentError("memory_types is empty");
  for (const std::string& t : memory_types) CTXMEM_RETURN_IF_ERROR(ParseMemoryType(t).status());
  for (const std::string& p : pruners) CTXMEM_RETURN_IF_ERROR(PrunerRegistry::Global().Check(p));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<CompressionConfig>> PlanPplSweep(const PplSweepOptions& options) {
  CTXMEM_RETURN_IF_ERROR(options.Validate());
  std::vector<std::string> pruners =
      options.pruners.empty() ? CanonicalPrunerNames(options.base) : options.pruners;
  std::erase(pruners, std::string(kReferencePruner));
  std::vector<MemoryTypeChoice> types;
  for (const std::string& t : options.memory_types) {
    CTXMEM_ASSIGN_OR_RETURN(MemoryTypeChoice choice, ParseMemoryType(t));
    types.push_back(choice);
  }
  std::vector<CompressionConfig> settings;
  for (int64_t c : options.chunk_sizes) {
    CompressionConfig ref = options.base;
    ref.pruner = kReferencePruner;
    ref.memory_type = MemoryType::kFm;
    ref.decremental_chunk = false;
    ref.chunk_size = c;
    ref.memory_size = options.memory_sizes.front();
    settings.push_back(ref);
    for (int64_t m : options.memory_sizes) {
      for (const std::string& p : pruners) {
        for (const MemoryTypeChoice& t : types) {
          CompressionConfig s = options.base;
          s.pruner = p;
          s.memory_type = t.type;
          s.decremental_chunk = t.decremental_chunk;
          s.chunk_size = c;
          s.memory_size = m;
          settings.push_back(s);
        }
      }
    }
  }
  return settings;
}

absl::StatusOr<PplRow> EvaluateCompressedPerplexity(const model::Transformer& model,
                                                    absl::Span<const int32_t> tokens,
                                                    int64_t eval_len,
                                                    const CompressionConfig& config,
                                                    const std::function<void(int64_t)>& on_tokens) {
  if (eval_len < 2 || static_cast<int64_t>(tokens.size()) < eval_len) {
    return absl::InvalidArgumentError(
        absl::StrCat("eval_len=", eval_len, " needs >= 2 and <= ", tokens.size(), " tokens"));
  }
  CTXMEM_RETURN_IF_ERROR(config.Validate());
  PplRow row;
  row.config = config;
  row.reference = config.pruner == kReferencePruner;
  double nll = 0;
  int64_t n_scored = 0;
  CompressHooks hooks;
  hooks.on_chunk_logits = [&](const ChunkLogits& chunk) -> absl::Status {
    // Row i of the chunk predicts stream token first_token + i + 1 (§10.1: every position).
    const int64_t q = chunk.logits->size(0);
    const int64_t n = std::min<int64_t>(q, eval_len - chunk.first_token - 1);
    if (n <= 0) return absl::OkStatus();
    std::vector<int64_t> next(tokens.begin() + chunk.first_token + 1,
                              tokens.begin() + chunk.first_token + 1 + n);
    return model::TorchCall("chunk nll", [&] {
      at::Tensor target = at::tensor(next, at::kLong).to(chunk.logits->device()).unsqueeze(1);
      at::Tensor logp = chunk.logits->narrow(0, 0, n).log_softmax(-1);  // [n, n_vocab] fp32
      nll -= logp.gather(1, target).to(at::kDouble).sum().item<double>();
      n_scored += n;
    });
  };
  if (on_tokens) {
    hooks.on_progress = [&](const CompressProgress& p) { on_tokens(p.n_tokens_done); };
  }
  SpanTokenSource source(std::span<const int32_t>(tokens.data(), eval_len));
  const auto start = std::chrono::steady_clock::now();
  CTXMEM_ASSIGN_OR_RETURN(CompressResult result, Compress(model, source, config, hooks));
  row.seconds = SecondsSince(start);
  row.n_scored = n_scored;
  row.nll = n_scored > 0 ? nll / n_scored : 0;
  row.ppl = std::exp(row.nll);
  row.tokens_per_second = row.seconds > 0 ? eval_len / row.seconds : 0;
  row.n_chunks = result.n_chunks;
  row.memory_len = result.memory.len();
  row.plan = result.plan.Describe();
  return row;
}

absl::StatusOr<PplSweepResult> RunPplSweep(
    const model::Transformer& model, absl::Span<const int32_t> tokens,
    const PplSweepOptions& options, const std::function<void(const PplSweepProgress&)>& progress) {
  CTXMEM_ASSIGN_OR_RETURN(std::vector<CompressionConfig> settings, PlanPplSweep(options));
  if (static_cast<int64_t>(tokens.size()) < options.eval_len) {
    return absl::InvalidArgumentError(absl::StrCat("eval_len=", options.eval_len, " exceeds the ",
                                                   tokens.size(), " tokens given"));
  }
  PplSweepResult result;
  result.eval_len = options.eval_len;
  result.peak_rss_per_setting = true;
  const auto start = std::chrono::steady_clock::now();
  const int64_t n_settings = static_cast<int64_t>(settings.size());
  for (int64_t i = 0; i < n_settings; ++i) {
    const CompressionConfig& config = settings[i];
    PplSweepProgress p{i, n_settings, &config, 0, options.eval_len, SecondsSince(start), nullptr};
    if (progress) progress(p);
    if (!ResetPeakRss().ok()) result.peak_rss_per_setting = false;
    auto on_tokens = [&](int64_t done) {
      p.n_tokens_done = done;
      p.seconds = SecondsSince(start);
      if (progress) progress(p);
    };
    absl::StatusOr<PplRow> row =
        EvaluateCompressedPerplexity(model, tokens, options.eval_len, config, on_tokens);
    if (!row.ok()) {
      PplRow failed;
      failed.config = config;
      failed.reference = config.pruner == kReferencePruner;
      failed.error = std::string(row.status().message());
      row = std::move(failed);
    }
    if (auto peak = PeakRssBytes(); peak.ok()) row->peak_rss_bytes = *peak;
    result.rows.push_back(std::move(*row));
    p.finished = &result.rows.back();
    p.seconds = SecondsSince(start);
    if (progress) progress(p);
  }
  result.seconds = SecondsSince(start);
  return result;
}

nlohmann::json PplSweepToJson(const PplSweepResult& result) {
  const std::map<int64_t, double> ref = ReferencePpl(result);
  nlohmann::json j;
  j["eval_len"] = result.eval_len;
  j["seconds"] = result.seconds;
  j["peak_rss_per_setting"] = result.peak_rss_per_setting;
  j["rows"] = nlohmann::json::array();
  for (const PplRow& row : result.rows) {
    nlohmann::json r;
    r["config"] = CompressionConfigToJson(row.config);
    r["reference"] = row.reference;
    r["error"] = row.error;
    if (row.error.empty()) {
      r["ppl"] = row.ppl;
      auto it = ref.find(row.config.chunk_size);
      r["ppl_vs_reference"] =
          it != ref.end() ? nlohmann::json(row.ppl / it->second) : nlohmann::json();
      r["nll"] = row.nll;
      r["n_scored"] = row.n_scored;
      r["seconds"] = row.seconds;
      r["tokens_per_second"] = row.tokens_per_second;
      r["n_chunks"] = row.n_chunks;
      r["memory_len"] = row.memory_len;
      r["plan"] = row.plan;
    }
    r["peak_rss_bytes"] = row.peak_rss_bytes;
    j["rows"].push_back(std::move(r));
  }
  return j;
}

std::string PplSweepToMarkdown(const PplSweepResult& result) {
  const std::map<int64_t, double> ref = ReferencePpl(result);
  std::string md = absl::StrCat(
      "Perplexity over every position of the first ", result.eval_len,
      " tokens (spec §10.1); ratio = PPL / no_compress PPL at the same chunk size. Peak RSS is ",
      result.peak_rss_per_setting ? "per setting (VmHWM reset before each)"
                                  : "process-wide (the kernel refused the per-setting reset)",
      ".\n\n| C | M | pruner | memory | PPL | ratio | time s | tok/s | peak RSS MiB |\n"
      "|---|---|---|---|---|---|---|---|---|\n");
  for (const PplRow& row : result.rows) {
    const CompressionConfig& c = row.config;
    const std::string m = row.reference ? "-" : absl::StrCat(c.memory_size);
    const std::string type = row.reference ? "-" : MemoryTypeLabel(c);
    if (!row.error.empty()) {
      absl::StrAppend(&md, "| ", c.chunk_size, " | ", m, " | ", c.pruner, " | ", type,
                      " | error: ", row.error, " | | | | |\n");
      continue;
    }
    auto it = ref.find(c.chunk_size);
    const std::string ratio = it != ref.end() ? absl::StrFormat("%.3f", row.ppl / it->second) : "";
    absl::StrAppend(
        &md, absl::StrFormat("| %d | %s | %s | %s | %.3f | %s | %.1f | %.0f | %s |\n", c.chunk_size,
                             m, c.pruner, type, row.ppl, ratio, row.seconds, row.tokens_per_second,
                             MiB(row.peak_rss_bytes)));
  }
  // Pivot per chunk size: pruner x M rows, memory types as columns.
  std::vector<int64_t> chunks;
  std::vector<std::string> types;
  for (const PplRow& row : result.rows) {
    if (std::find(chunks.begin(), chunks.end(), row.config.chunk_size) == chunks.end()) {
      chunks.push_back(row.config.chunk_size);
    }
    const std::string t = MemoryTypeLabel(row.config);
    if (!row.reference && std::find(types.begin(), types.end(), t) == types.end()) {
      types.push_back(t);
    }
  }
  for (int64_t chunk : chunks) {
    auto it = ref.find(chunk);
    absl::StrAppend(&md, "\n**C = ", chunk, "**",
                    it != ref.end() ? absl::StrFormat(" (no_compress PPL %.3f)", it->second) : "",
                    "\n\n| pruner | M | ", absl::StrJoin(types, " | "), " |\n|---|---|");
    for (size_t i = 0; i < types.size(); ++i) md += "---|";
    md += "\n";
    std::vector<std::pair<std::string, int64_t>> keys;  // (pruner, M) in run order
    std::map<std::pair<std::string, int64_t>, std::map<std::string, std::string>> cells;
    for (const PplRow& row : result.rows) {
      if (row.reference || row.config.chunk_size != chunk) continue;
      auto key = std::make_pair(row.config.pruner, row.config.memory_size);
      if (cells.find(key) == cells.end()) keys.push_back(key);
      cells[key][MemoryTypeLabel(row.config)] =
          row.error.empty() ? absl::StrFormat("%.3f", row.ppl) : "error";
    }
    for (const auto& key : keys) {
      absl::StrAppend(&md, "| ", key.first, " | ", key.second, " |");
      for (const std::string& t : types) {
        auto cell = cells[key].find(t);
        absl::StrAppend(&md, " ", cell != cells[key].end() ? cell->second : "", " |");
      }
      md += "\n";
    }
  }
  return md;
}

}  // namespace ctxmem::compress
