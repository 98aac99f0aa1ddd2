#pragma once
// Passkey retrieval through compression (the seeds' passkey test, spec §10.1; prompt as in
// LongLoRA's passkey_retrieval.py, which the seed's examples/mem_perceiver/passkey_retrieval.py
// follows): a random 5-digit key sits at a chosen depth inside repeated filler text; the text is
// compressed chunk by chunk into a memory; then the question is asked with the memory as past
// and the answer generated greedily. A trial is correct when the key appears in the answer.
// Thread-safety: free functions; concurrent calls on one Model are fine.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/compress/compression_config.h"
#include "nlohmann/json.hpp"

namespace ctxmem::model {
class Model;
}
namespace ctxmem::tokenizer {
class Tokenizer;
}

namespace ctxmem::eval {

// One passkey prompt, as token ids. Pieces are tokenized one by one (each starts with a space
// or newline, where the BPE pre-tokenizer splits anyway), so counts and the key's place are exact.
struct PasskeyPrompt {
  std::vector<int32_t> context;   // task line + filler with the key line inside; compressed
  std::vector<int32_t> question;  // "\nWhat is the pass key? The pass key is"; the decode prompt
  std::string passkey;            // the digits to find
  int64_t key_begin = 0;          // index in `context` of the key line's first token
  int64_t n_filler = 0;           // filler repetitions in all
  double depth = 0;               // key_begin / context.size(), the depth actually obtained
};

// A prompt whose context + question is at most `length` tokens (as many filler repetitions as
// fit), the key line after round(depth * n_filler) repetitions. InvalidArgument for depth
// outside [0, 1], a passkey that is not all digits, or a length too small for even one filler
// repetition (the message gives the minimum); tokenizer errors are passed through.
absl::StatusOr<PasskeyPrompt> BuildPasskeyPrompt(const tokenizer::Tokenizer& tokenizer,
                                                 int64_t length, double depth,
                                                 const std::string& passkey);

// A 5-digit key (10000..99999) drawn from SplitMix64 seeded by (seed, index): reproducible.
std::string RandomPasskey(uint64_t seed, uint64_t index);

struct PasskeyOptions {
  std::vector<int64_t> lengths = {1024, 2048};   // prompt tokens, each >= 1
  std::vector<double> depths = {0.0, 0.5, 1.0};  // each in [0, 1]
  int64_t n_trials = 1;                          // keys per (length, depth), >= 1
  uint64_t seed = 0;                             // for the keys
  int64_t max_new_tokens = 12;                   // >= 1; a 5-digit key needs about 6
  compress::CompressionConfig config;            // how the context is compressed

  // InvalidArgument naming the field and value (also for an invalid config).
  absl::Status Validate() const;
};

struct PasskeyTrial {
  int64_t length = 0;
  double depth = 0;         // asked for
  double depth_actual = 0;  // PasskeyPrompt::depth
  int64_t trial = 0;
  std::string passkey;
  std::string answer;  // generated text
  bool correct = false;
  int64_t n_context_tokens = 0;
  int64_t memory_len = 0;  // entries per kv head the question was asked against
  double compress_seconds = 0;
  double generate_seconds = 0;
};

struct PasskeyResult {
  compress::CompressionConfig config;
  std::vector<PasskeyTrial> trials;  // lengths x depths x trials, in that order

  // Share of correct trials at (length, depth); NaN when there were none.
  double Accuracy(int64_t length, double depth) const;
  double Accuracy() const;  // over every trial
};

struct PasskeyProgress {
  int64_t done = 0;  // trials finished
  int64_t total = 0;
  const PasskeyTrial* last = nullptr;  // the trial just finished; borrowed for the call
};

// Runs every trial. InvalidArgument for bad options; FailedPrecondition when the model has no
// tokenizer; compression and generation errors are returned with the trial's length and depth.
absl::StatusOr<PasskeyResult> RunPasskey(
    const model::Model& model, const PasskeyOptions& options,
    const std::function<void(const PasskeyProgress&)>& progress = nullptr);

// {"config": {...}, "accuracy", "lengths", "depths", "cells": [[accuracy per depth] per length],
// "trials": [...]}.
nlohmann::json PasskeyResultToJson(const PasskeyResult& result, const PasskeyOptions& options);

// A markdown accuracy table: one row per length, one column per depth.
std::string PasskeyResultToMarkdown(const PasskeyResult& result, const PasskeyOptions& options);

}  // namespace ctxmem::eval
