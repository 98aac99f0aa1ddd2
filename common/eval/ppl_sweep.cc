#include "common/eval/ppl_sweep.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/tensor.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
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

namespace ctxmem::eval {
namespace {

constexpr const char* kReferencePruner = "no_compress";

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Registry names with aliases folded onto the pruner they make (snapkv -> conv), in registry
// order; names whose factory needs more than the base config (none today) are skipped.
std::vector<std::string> CanonicalPrunerNames(const compress::CompressionConfig& base) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const std::string& name : compress::PrunerRegistry::Global().names()) {
    compress::CompressionConfig c = base;
    c.pruner = name;
    auto pruner = compress::PrunerRegistry::Global().Create(c);
    if (!pruner.ok()) continue;
    std::string canonical((*pruner)->name());
    if (seen.insert(canonical).second) out.push_back(canonical);
  }
  return out;
}

// "[3, 5]": a tensor's shape for messages.
std::string ShapeString(const at::Tensor& t) {
  return absl::StrCat("[", absl::StrJoin(t.sizes(), ", "), "]");
}

std::string MiB(int64_t bytes) {
  return bytes < 0 ? "?" : absl::StrFormat("%.0f", static_cast<double>(bytes) / (1 << 20));
}

// Reference PPL per chunk size (no_compress rows that ran).
std::map<int64_t, double> ReferencePpl(const PplSweepResult& result) {
  std::map<int64_t, double> ref;
  for (const PplRow& row : result.rows) {
    if (row.reference && !row.pending && row.error.empty()) ref[row.config.chunk_size] = row.ppl;
  }
  return ref;
}

std::string MemoryTypeLabel(const compress::CompressionConfig& c) {
  return std::string(compress::MemoryTypeName(c.memory_type, c.decremental_chunk));
}

// User + system CPU seconds of the process so far.
double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// "0.52 0.80 1.10" (1/5/15-minute load averages), or "" when /proc/loadavg is unreadable.
std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  if (!(in >> a >> b >> c)) return "";
  return absl::StrCat(a, " ", b, " ", c);
}

// A finished row of an earlier run's JSON for `config`, or nullptr. InvalidArgument when a row
// matching the config is malformed.
absl::StatusOr<std::optional<PplRow>> PreviousRow(const nlohmann::json& rows,
                                                  const compress::CompressionConfig& config) {
  if (rows.is_null()) return std::nullopt;
  const nlohmann::json key = compress::CompressionConfigToJson(config);
  for (const nlohmann::json& r : rows) {
    if (!r.is_object() || !r.contains("config") || r["config"] != key) continue;
    if (r.value("pending", false)) continue;
    PplRow row;
    row.config = config;
    row.resumed = true;
    try {
      row.reference = r.at("reference").get<bool>();
      row.error = r.value("error", std::string());
      row.peak_rss_bytes = r.value("peak_rss_bytes", int64_t{-1});
      row.load_average = r.value("load_average", std::string());
      if (row.error.empty()) {
        row.ppl = r.at("ppl").get<double>();
        row.nll = r.at("nll").get<double>();
        row.n_scored = r.at("n_scored").get<int64_t>();
        row.chunk_nll = r.value("chunk_nll", std::vector<double>());  // absent in older tables
        if (r.contains("kl") && r["kl"].is_number()) {                // absent or null: no KL
          row.has_kl = true;
          row.kl = r["kl"].get<double>();
          row.chunk_kl = r.value("chunk_kl", std::vector<double>());
        }
        row.seconds = r.at("seconds").get<double>();
        row.cpu_seconds = r.value("cpu_seconds", 0.0);
        row.tokens_per_second = r.at("tokens_per_second").get<double>();
        row.n_chunks = r.at("n_chunks").get<int64_t>();
        row.memory_len = r.at("memory_len").get<int64_t>();
        row.plan = r.at("plan").get<std::string>();
      }
    } catch (const nlohmann::json::exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("previous row for ", key.dump(), " is malformed: ", e.what()));
    }
    return row;
  }
  return std::nullopt;
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
  for (const std::string& t : memory_types)
    CTXMEM_RETURN_IF_ERROR(compress::ParseMemoryType(t).status());
  for (const std::string& p : pruners)
    CTXMEM_RETURN_IF_ERROR(compress::PrunerRegistry::Global().Check(p));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<compress::CompressionConfig>> PlanPplSweep(
    const PplSweepOptions& options) {
  CTXMEM_RETURN_IF_ERROR(options.Validate());
  std::vector<std::string> pruners =
      options.pruners.empty() ? CanonicalPrunerNames(options.base) : options.pruners;
  std::erase(pruners, std::string(kReferencePruner));
  std::vector<compress::MemoryTypeChoice> types;
  for (const std::string& t : options.memory_types) {
    CTXMEM_ASSIGN_OR_RETURN(compress::MemoryTypeChoice choice, compress::ParseMemoryType(t));
    types.push_back(choice);
  }
  std::vector<compress::CompressionConfig> settings;
  for (int64_t c : options.chunk_sizes) {
    compress::CompressionConfig ref = options.base;
    ref.pruner = kReferencePruner;
    ref.perceiver_weights.clear();
    ref.memory_type = compress::MemoryType::kFm;
    ref.decremental_chunk = false;
    ref.chunk_size = c;
    ref.memory_size = options.memory_sizes.front();
    settings.push_back(ref);
    for (int64_t m : options.memory_sizes) {
      for (const std::string& p : pruners) {
        for (const compress::MemoryTypeChoice& t : types) {
          compress::CompressionConfig s = options.base;
          s.pruner = p;
          // --perceiver-weights is for the perceiver rows only (the others refuse it).
          if (p != "perceiver") s.perceiver_weights.clear();
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
                                                    const compress::CompressionConfig& config,
                                                    const std::function<void(int64_t)>& on_tokens,
                                                    const NextTokenLogProbs& kl) {
  if (eval_len < 2 || static_cast<int64_t>(tokens.size()) < eval_len) {
    return absl::InvalidArgumentError(
        absl::StrCat("eval_len=", eval_len, " needs >= 2 and <= ", tokens.size(), " tokens"));
  }
  CTXMEM_RETURN_IF_ERROR(config.Validate());
  const bool with_kl = kl.reference.defined();
  if (with_kl && (kl.reference.dim() != 2 || kl.reference.size(0) != eval_len - 1)) {
    return absl::InvalidArgumentError(absl::StrCat("the KL reference has shape ",
                                                   ShapeString(kl.reference), ", expected [",
                                                   eval_len - 1, ", n_vocab]"));
  }
  PplRow row;
  row.config = config;
  row.reference = config.pruner == kReferencePruner;
  row.has_kl = with_kl;
  double nll = 0;
  double kl_sum = 0;
  int64_t n_scored = 0;
  compress::CompressHooks hooks;
  hooks.on_chunk_logits = [&](const compress::ChunkLogits& chunk) -> absl::Status {
    // Row i of the chunk predicts stream token first_token + i + 1 (§10.1: every position).
    const int64_t q = chunk.logits->size(0);
    const int64_t n = std::min<int64_t>(q, eval_len - chunk.first_token - 1);
    if (n <= 0) return absl::OkStatus();
    std::vector<int64_t> next(tokens.begin() + chunk.first_token + 1,
                              tokens.begin() + chunk.first_token + 1 + n);
    return model::TorchCall("chunk nll", [&] {
      at::Tensor target = at::tensor(next, at::kLong).to(chunk.logits->device()).unsqueeze(1);
      at::Tensor logp = chunk.logits->narrow(0, 0, n).log_softmax(-1);  // [n, n_vocab] fp32
      const double chunk_nll = -logp.gather(1, target).to(at::kDouble).sum().item<double>();
      nll += chunk_nll;
      n_scored += n;
      row.chunk_nll.push_back(chunk_nll / static_cast<double>(n));
      if (kl.capture != nullptr) {
        if (!kl.capture->defined()) {
          *kl.capture = at::empty({eval_len - 1, logp.size(1)}, logp.options());  // [T-1, V]
        }
        kl.capture->narrow(0, chunk.first_token, n).copy_(logp);
      }
      if (with_kl) {
        // KL(ref || this) per position: sum_v p_ref (log p_ref - log p), [n].
        at::Tensor ref = kl.reference.narrow(0, chunk.first_token, n);  // [n, V]
        const double chunk_kl =
            ref.exp().mul(ref.sub(logp)).sum(-1).to(at::kDouble).sum().item<double>();
        kl_sum += chunk_kl;
        row.chunk_kl.push_back(chunk_kl / static_cast<double>(n));
      }
    });
  };
  if (with_kl) {
    // The vocabulary must match too; checked on the first chunk's logits.
    hooks.on_chunk_logits = [check = std::move(hooks.on_chunk_logits),
                             &kl](const compress::ChunkLogits& chunk) -> absl::Status {
      if (chunk.logits->size(1) != kl.reference.size(1)) {
        return absl::InvalidArgumentError(
            absl::StrCat("the KL reference has ", kl.reference.size(1),
                         " vocabulary entries, the model ", chunk.logits->size(1)));
      }
      return check(chunk);
    };
  }
  if (on_tokens) {
    hooks.on_progress = [&](const compress::CompressProgress& p) { on_tokens(p.n_tokens_done); };
  }
  compress::SpanTokenSource source(std::span<const int32_t>(tokens.data(), eval_len));
  const auto start = std::chrono::steady_clock::now();
  CTXMEM_ASSIGN_OR_RETURN(compress::CompressResult result,
                          compress::Compress(model, source, config, hooks));
  row.seconds = SecondsSince(start);
  row.n_scored = n_scored;
  row.nll = n_scored > 0 ? nll / n_scored : 0;
  row.ppl = std::exp(row.nll);
  row.kl = with_kl && n_scored > 0 ? kl_sum / n_scored : 0;
  row.tokens_per_second = row.seconds > 0 ? eval_len / row.seconds : 0;
  row.n_chunks = result.n_chunks;
  row.memory_len = result.memory.len();
  row.plan = result.plan.Describe();
  return row;
}

absl::StatusOr<PplSweepResult> RunPplSweep(
    const model::Transformer& model, absl::Span<const int32_t> tokens,
    const PplSweepOptions& options, const std::function<void(const PplSweepProgress&)>& progress) {
  CTXMEM_ASSIGN_OR_RETURN(std::vector<compress::CompressionConfig> settings, PlanPplSweep(options));
  if (static_cast<int64_t>(tokens.size()) < options.eval_len) {
    return absl::InvalidArgumentError(absl::StrCat("eval_len=", options.eval_len, " exceeds the ",
                                                   tokens.size(), " tokens given"));
  }
  if (!options.previous_rows.is_null() && !options.previous_rows.is_array()) {
    return absl::InvalidArgumentError("previous_rows must be the \"rows\" array of a sweep's JSON");
  }
  PplSweepResult result;
  result.eval_len = options.eval_len;
  result.peak_rss_per_setting = true;
  for (const compress::CompressionConfig& config : settings) {
    PplRow pending;
    pending.config = config;
    pending.reference = config.pruner == kReferencePruner;
    pending.pending = true;
    result.rows.push_back(std::move(pending));
  }
  const auto start = std::chrono::steady_clock::now();
  const int64_t n_settings = static_cast<int64_t>(settings.size());
  at::Tensor reference_logp;  // [eval_len - 1, n_vocab] of reference_chunk's no_compress row
  int64_t reference_chunk = -1;
  for (int64_t i = 0; i < n_settings; ++i) {
    const compress::CompressionConfig& config = settings[i];
    PplSweepProgress p{i,       n_settings, &config, 0, options.eval_len, SecondsSince(start),
                       nullptr, nullptr};
    CTXMEM_ASSIGN_OR_RETURN(std::optional<PplRow> previous,
                            PreviousRow(options.previous_rows, config));
    if (previous.has_value()) {
      result.rows[i] = std::move(*previous);
      p.finished = &result.rows[i];
      p.table = &result;
      if (progress) progress(p);
      continue;
    }
    if (progress) progress(p);
    if (!compress::ResetPeakRss().ok()) result.peak_rss_per_setting = false;
    auto on_tokens = [&](int64_t done) {
      p.n_tokens_done = done;
      p.seconds = SecondsSince(start);
      if (progress) progress(p);
    };
    // The KL reference of this chunk size: kept by its no_compress row, or (when that row was
    // resumed from an earlier table) computed again here, once.
    NextTokenLogProbs kl;
    if (options.kl) {
      if (reference_chunk != config.chunk_size) {
        reference_logp = at::Tensor();  // free the previous chunk size's
        reference_chunk = config.chunk_size;
        if (config.pruner != kReferencePruner) {  // the no_compress row fills it itself
          compress::CompressionConfig ref = config;
          for (const compress::CompressionConfig& s : settings) {
            if (s.pruner == kReferencePruner && s.chunk_size == config.chunk_size) ref = s;
          }
          NextTokenLogProbs keep;
          keep.capture = &reference_logp;
          if (!EvaluateCompressedPerplexity(model, tokens, options.eval_len, ref, nullptr, keep)
                   .ok()) {
            reference_logp = at::Tensor();
          }
        }
      }
      if (config.pruner == kReferencePruner) {
        kl.capture = &reference_logp;
      } else {
        kl.reference = reference_logp;  // undefined when the reference failed: no KL
      }
    }
    const double cpu0 = CpuSeconds();
    absl::StatusOr<PplRow> row =
        EvaluateCompressedPerplexity(model, tokens, options.eval_len, config, on_tokens, kl);
    if (row.ok()) row->cpu_seconds = CpuSeconds() - cpu0;
    if (!row.ok() && kl.capture != nullptr) reference_logp = at::Tensor();  // partial: unusable
    if (row.ok() && row->reference && options.kl) {
      row->has_kl = true;  // KL of the reference to itself
      row->kl = 0;
      row->chunk_kl.assign(row->chunk_nll.size(), 0.0);
    }
    if (!row.ok()) {
      PplRow failed;
      failed.config = config;
      failed.reference = config.pruner == kReferencePruner;
      failed.error = std::string(row.status().message());
      row = std::move(failed);
    }
    if (auto peak = compress::PeakRssBytes(); peak.ok()) row->peak_rss_bytes = *peak;
    row->load_average = LoadAverage();
    result.rows[i] = std::move(*row);
    p.finished = &result.rows[i];
    p.table = &result;
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
    r["config"] = compress::CompressionConfigToJson(row.config);
    r["reference"] = row.reference;
    r["pending"] = row.pending;
    if (row.pending) {
      j["rows"].push_back(std::move(r));
      continue;
    }
    r["error"] = row.error;
    r["load_average"] = row.load_average;
    r["resumed"] = row.resumed;
    if (row.error.empty()) {
      r["ppl"] = row.ppl;
      auto it = ref.find(row.config.chunk_size);
      r["ppl_vs_reference"] =
          it != ref.end() ? nlohmann::json(row.ppl / it->second) : nlohmann::json();
      r["nll"] = row.nll;
      r["n_scored"] = row.n_scored;
      r["chunk_nll"] = row.chunk_nll;
      r["kl"] = row.has_kl ? nlohmann::json(row.kl) : nlohmann::json();
      r["chunk_kl"] = row.has_kl ? nlohmann::json(row.chunk_kl) : nlohmann::json();
      r["seconds"] = row.seconds;
      r["cpu_seconds"] = row.cpu_seconds;
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
      ". CPU s = user + system CPU time of the setting (compare these on a shared machine; time s "
      "is wall time). KL = mean over the scored positions of KL(no_compress || row) of the "
      "next-token distribution, nats (- when not computed). Load = the 1/5/15-minute load "
      "average when the setting ended.\n\n");
  const int64_t n_pending = std::count_if(result.rows.begin(), result.rows.end(),
                                          [](const PplRow& r) { return r.pending; });
  if (n_pending > 0) {
    absl::StrAppend(&md, "**Partial table**: ", result.rows.size() - n_pending, " of ",
                    result.rows.size(), " settings done, ", n_pending,
                    " pending (rerun the same command with the same --out/--name to resume).\n\n");
  }
  md +=
      "| C | M | pruner | memory | PPL | ratio | KL | time s | CPU s | tok/s | peak RSS MiB | load "
      "|\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const PplRow& row : result.rows) {
    const compress::CompressionConfig& c = row.config;
    const std::string m = row.reference ? "-" : absl::StrCat(c.memory_size);
    const std::string type = row.reference ? "-" : MemoryTypeLabel(c);
    if (row.pending) {
      absl::StrAppend(&md, "| ", c.chunk_size, " | ", m, " | ", c.pruner, " | ", type,
                      " | pending | | | | | | | |\n");
      continue;
    }
    if (!row.error.empty()) {
      absl::StrAppend(&md, "| ", c.chunk_size, " | ", m, " | ", c.pruner, " | ", type,
                      " | error: ", row.error, " | | | | | | | |\n");
      continue;
    }
    auto it = ref.find(c.chunk_size);
    const std::string ratio = it != ref.end() ? absl::StrFormat("%.3f", row.ppl / it->second) : "";
    absl::StrAppend(
        &md, absl::StrFormat(
                 "| %d | %s | %s | %s | %.3f | %s | %s | %.1f | %.1f | %.0f | %s | %s |\n",
                 c.chunk_size, m, c.pruner, type, row.ppl, ratio,
                 row.has_kl ? absl::StrFormat("%.4f", row.kl) : "-", row.seconds, row.cpu_seconds,
                 row.tokens_per_second, MiB(row.peak_rss_bytes), row.load_average));
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
      cells[key][MemoryTypeLabel(row.config)] = row.pending ? "pending"
                                                : row.error.empty()
                                                    ? absl::StrFormat("%.3f", row.ppl)
                                                    : "error";
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

}  // namespace ctxmem::eval
