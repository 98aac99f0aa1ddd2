#include "common/eval/passkey_task.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/compress/compressor.h"
#include "common/compress/config_json.h"
#include "common/compress/memory.h"
#include "common/compress/token_source.h"
#include "common/model/generator.h"
#include "common/model/model.h"
#include "common/status.h"
#include "common/tokenizer/tokenizer.h"

namespace ctxmem::eval {
namespace {

// LongLoRA's passkey_retrieval.py wording (task line, filler, key line, question).
constexpr const char* kTask =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
    "them. I will quiz you about the important information there.";
constexpr const char* kFiller =
    " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
constexpr const char* kQuestion = "\nWhat is the pass key? The pass key is";

std::string KeyLine(const std::string& passkey) {
  return absl::StrCat(" The pass key is ", passkey, ". Remember it. ", passkey,
                      " is the pass key.");
}

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void Append(std::vector<int32_t>* out, const std::vector<int32_t>& piece) {
  out->insert(out->end(), piece.begin(), piece.end());
}

// One trial: compress the context, ask, generate.
absl::StatusOr<PasskeyTrial> RunTrial(const model::Model& model, const PasskeyOptions& options,
                                      int64_t length, double depth, int64_t trial) {
  PasskeyTrial t;
  t.length = length;
  t.depth = depth;
  t.trial = trial;
  const uint64_t index = static_cast<uint64_t>(length) * 1000003u +
                         static_cast<uint64_t>(std::llround(depth * 1000)) * 1009u +
                         static_cast<uint64_t>(trial);
  t.passkey = RandomPasskey(options.seed, index);
  CTXMEM_ASSIGN_OR_RETURN(PasskeyPrompt prompt,
                          BuildPasskeyPrompt(*model.tokenizer(), length, depth, t.passkey));
  t.depth_actual = prompt.depth;
  t.n_context_tokens = static_cast<int64_t>(prompt.context.size());

  const auto start = std::chrono::steady_clock::now();
  compress::SpanTokenSource source(prompt.context);
  CTXMEM_ASSIGN_OR_RETURN(compress::CompressResult compressed,
                          compress::Compress(model.transformer(), source, options.config));
  t.compress_seconds = SecondsSince(start);
  t.memory_len = compressed.memory.len();
  CTXMEM_ASSIGN_OR_RETURN(model::KvCache past,
                          compress::ToKvCache(compressed.memory, model.transformer()));

  model::GenerateOptions gen;
  gen.max_new_tokens = options.max_new_tokens;  // greedy by default
  const auto gen_start = std::chrono::steady_clock::now();
  CTXMEM_ASSIGN_OR_RETURN(model::GenerateResult answer,
                          model::Generate(model, prompt.question, &past, gen));
  t.generate_seconds = SecondsSince(gen_start);
  t.answer = answer.text;
  t.correct = answer.text.find(t.passkey) != std::string::npos;
  return t;
}

}  // namespace

std::string RandomPasskey(uint64_t seed, uint64_t index) {
  uint64_t state = seed;
  state = SplitMix64(state) ^ index;
  return absl::StrCat(10000 + SplitMix64(state) % 90000);
}

absl::StatusOr<PasskeyPrompt> BuildPasskeyPrompt(const tokenizer::Tokenizer& tokenizer,
                                                 int64_t length, double depth,
                                                 const std::string& passkey) {
  if (!(depth >= 0.0 && depth <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("depth=", depth, " must be in [0, 1]"));
  }
  if (passkey.empty() || passkey.find_first_not_of("0123456789") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("passkey '", passkey, "' must be a non-empty string of digits"));
  }
  CTXMEM_ASSIGN_OR_RETURN(std::vector<int32_t> task, tokenizer.Encode(kTask));
  CTXMEM_ASSIGN_OR_RETURN(std::vector<int32_t> filler, tokenizer.Encode(kFiller));
  CTXMEM_ASSIGN_OR_RETURN(std::vector<int32_t> key, tokenizer.Encode(KeyLine(passkey)));
  CTXMEM_ASSIGN_OR_RETURN(std::vector<int32_t> question, tokenizer.Encode(kQuestion));
  const int64_t fixed = static_cast<int64_t>(task.size() + key.size() + question.size());
  const int64_t per_filler = static_cast<int64_t>(filler.size());
  if (per_filler < 1 || length < fixed + per_filler) {
    return absl::InvalidArgumentError(absl::StrCat("length=", length, " is too short: a passkey ",
                                                   "prompt needs at least ", fixed + per_filler,
                                                   " tokens"));
  }
  PasskeyPrompt p;
  p.passkey = passkey;
  p.question = std::move(question);
  p.n_filler = (length - fixed) / per_filler;
  const int64_t before = std::llround(depth * static_cast<double>(p.n_filler));
  Append(&p.context, task);
  for (int64_t i = 0; i < before; ++i) Append(&p.context, filler);
  p.key_begin = static_cast<int64_t>(p.context.size());
  Append(&p.context, key);
  for (int64_t i = before; i < p.n_filler; ++i) Append(&p.context, filler);
  p.depth = static_cast<double>(p.key_begin) / static_cast<double>(p.context.size());
  return p;
}

absl::Status PasskeyOptions::Validate() const {
  if (lengths.empty()) return absl::InvalidArgumentError("lengths is empty");
  for (int64_t l : lengths) {
    if (l < 1) return absl::InvalidArgumentError(absl::StrCat("length ", l, " must be >= 1"));
  }
  if (depths.empty()) return absl::InvalidArgumentError("depths is empty");
  for (double d : depths) {
    if (!(d >= 0.0 && d <= 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat("depth ", d, " must be in [0, 1]"));
    }
  }
  if (n_trials < 1) {
    return absl::InvalidArgumentError(absl::StrCat("n_trials=", n_trials, " must be >= 1"));
  }
  if (max_new_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_new_tokens=", max_new_tokens, " must be >= 1"));
  }
  return config.Validate();
}

double PasskeyResult::Accuracy(int64_t length, double depth) const {
  int64_t n = 0, correct = 0;
  for (const PasskeyTrial& t : trials) {
    if (t.length == length && t.depth == depth) ++n, correct += t.correct ? 1 : 0;
  }
  return n > 0 ? static_cast<double>(correct) / n : std::numeric_limits<double>::quiet_NaN();
}

double PasskeyResult::Accuracy() const {
  int64_t correct = 0;
  for (const PasskeyTrial& t : trials) correct += t.correct ? 1 : 0;
  return trials.empty() ? std::numeric_limits<double>::quiet_NaN()
                        : static_cast<double>(correct) / trials.size();
}

absl::StatusOr<PasskeyResult> RunPasskey(
    const model::Model& model, const PasskeyOptions& options,
    const std::function<void(const PasskeyProgress&)>& progress) {
  CTXMEM_RETURN_IF_ERROR(options.Validate());
  if (model.tokenizer() == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(model.path(), " has no tokenizer; the passkey test needs one"));
  }
  PasskeyResult result;
  result.config = options.config;
  const int64_t total =
      static_cast<int64_t>(options.lengths.size() * options.depths.size()) * options.n_trials;
  for (int64_t length : options.lengths) {
    for (double depth : options.depths) {
      for (int64_t trial = 0; trial < options.n_trials; ++trial) {
        absl::StatusOr<PasskeyTrial> t = RunTrial(model, options, length, depth, trial);
        if (!t.ok()) {
          return WithContext(t.status(), absl::StrCat("passkey length=", length, " depth=", depth));
        }
        result.trials.push_back(std::move(*t));
        if (progress) {
          progress(PasskeyProgress{static_cast<int64_t>(result.trials.size()), total,
                                   &result.trials.back()});
        }
      }
    }
  }
  return result;
}

nlohmann::json PasskeyResultToJson(const PasskeyResult& result, const PasskeyOptions& options) {
  auto number_or_null = [](double v) {
    return std::isnan(v) ? nlohmann::json() : nlohmann::json(v);
  };
  nlohmann::json j;
  j["config"] = compress::CompressionConfigToJson(result.config);
  j["accuracy"] = number_or_null(result.Accuracy());
  j["lengths"] = options.lengths;
  j["depths"] = options.depths;
  j["n_trials"] = options.n_trials;
  j["cells"] = nlohmann::json::array();
  for (int64_t length : options.lengths) {
    nlohmann::json row = nlohmann::json::array();
    for (double depth : options.depths)
      row.push_back(number_or_null(result.Accuracy(length, depth)));
    j["cells"].push_back(std::move(row));
  }
  j["trials"] = nlohmann::json::array();
  for (const PasskeyTrial& t : result.trials) {
    j["trials"].push_back({{"length", t.length},
                           {"depth", t.depth},
                           {"depth_actual", t.depth_actual},
                           {"trial", t.trial},
                           {"passkey", t.passkey},
                           {"answer", t.answer},
                           {"correct", t.correct},
                           {"n_context_tokens", t.n_context_tokens},
                           {"memory_len", t.memory_len},
                           {"compress_seconds", t.compress_seconds},
                           {"generate_seconds", t.generate_seconds}});
  }
  return j;
}

std::string PasskeyResultToMarkdown(const PasskeyResult& result, const PasskeyOptions& options) {
  const compress::CompressionConfig& c = result.config;
  std::string md = absl::StrFormat(
      "Passkey accuracy, pruner %s, memory %s, C=%d, M=%d, %d trial(s) per cell; overall %.2f\n\n"
      "| length \\ depth |",
      c.pruner, std::string(compress::MemoryTypeName(c.memory_type, c.decremental_chunk)),
      c.chunk_size, c.memory_size, options.n_trials, result.Accuracy());
  for (double d : options.depths) absl::StrAppend(&md, " ", absl::StrFormat("%.2f", d), " |");
  md += "\n|---|";
  for (size_t i = 0; i < options.depths.size(); ++i) md += "---|";
  md += "\n";
  for (int64_t length : options.lengths) {
    absl::StrAppend(&md, "| ", length, " |");
    for (double d : options.depths) {
      absl::StrAppend(&md, " ", absl::StrFormat("%.2f", result.Accuracy(length, d)), " |");
    }
    md += "\n";
  }
  return md;
}

}  // namespace ctxmem::eval
