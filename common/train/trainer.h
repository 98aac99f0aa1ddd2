#pragma once
// Train(): the training loop for small modules around a frozen LLM (docs/training.md): AdamW,
// linear warmup + cosine schedule (LrSchedule), gradient accumulation over batch x accum
// windows per optimizer step, gradient-norm clipping, validation and held-out compressed PPL
// every eval_every steps, checkpoints every checkpoint_every steps with exact resume.
//
// Output folder (options.out_dir):
//   checkpoint/{weights.safetensors, optimizer.pt, state.json}   the last checkpoint: module
//       weights (the learned file format), AdamW state (torch::save), and step, windows consumed,
//       curves. Written as checkpoint.tmp/ then renamed over checkpoint/ (a kill -9 leaves the
//       previous one intact).
//   curves.json  train loss per step, validation loss and held-out PPL per evaluation, the
//       training-free reference PPLs (tova, conv at the same C, M) on the same windows.
//   <name>.safetensors + <name>.json  the trained weights and their manifest (at the end).
// Determinism: the module is initialised from torch's generator seeded with options.seed, the
// windows are TextWindows::Window(seed, i); nothing else draws random numbers, so the same
// options on the same machine (and thread count) give the same weights bit for bit, and a
// resumed run continues exactly where the checkpoint stopped.
// Thread-safety: one training per process (torch's global generator is seeded).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/train/perceiver_module.h"
#include "common/train/perceiver_objective.h"
#include "common/train/text_windows.h"
#include "nlohmann/json.hpp"

namespace ctxmem::model {
class Transformer;
}

namespace ctxmem::train {

struct TrainOptions {
  std::string method = "perceiver";  // "perceiver" | "perceiver_fuser" | "llm_fuser"
  std::string name = "perceiver";    // output stem <name>.safetensors / .json
  PerceiverLossOptions loss;
  int64_t n_chunks = 4;      // chunks per window (window = n_chunks * loss.chunk_size tokens)
  PerceiverShape shape;      // query_len, d_query, temperature (n_layers, d_model from the model)
  std::string init_weights;  // start from this file (of the method) instead of a random init
  // Fusers (spec §7; objective "lm", loss.objective is not read): perceiver_fuser takes
  // query_len, d_query, temperature from `shape` and these; llm_fuser query_len (its distinct
  // memory tokens) and the LoRA.
  int64_t fuse_k = 4;              // perceiver_fuser: entries fused per anchor
  std::string fuser_norm = "pre";  // perceiver_fuser: "pre" (ctxmem) | "seed"
  int64_t lora_rank = 16;          // llm_fuser
  double lora_alpha = 0;           // llm_fuser; <= 0: 2 * lora_rank (the seed's ratio)
  int64_t steps = 100;
  double lr = 1e-3;
  int64_t warmup = 10;
  double min_lr_ratio = 0.1;
  double weight_decay = 0.01;
  int64_t batch = 1;  // windows per micro-batch (run one after the other)
  int64_t accum = 1;  // micro-batches per optimizer step
  double clip = 1.0;  // max gradient norm; <= 0 disables
  uint64_t seed = 0;
  int64_t checkpoint_every = 10;  // steps; <= 0: only at the end
  int64_t eval_every = 10;        // steps; <= 0: only at the end
  int64_t val_windows = 2;        // validation windows per evaluation (0: no validation)
  bool eval_ppl = true;           // held-out compressed PPL (and tova/conv references)
  std::string out_dir;
  bool resume = false;  // continue from out_dir/checkpoint when there is one
  // Tests: return Cancelled after this many steps of this call (after that step's checkpoint,
  // if one is due), as a run that was killed there. 0 = run to the end.
  int64_t stop_after_steps = 0;
  std::string command;       // the command line, recorded in the manifest
  nlohmann::json data_info;  // what the caller knows about the data (manifest, dirs)
};

struct TrainProgress {
  int64_t step = 0;  // optimizer steps done
  int64_t n_steps = 0;
  double loss = 0, lm = 0, aux = 0, lr = 0, grad_norm = 0;
  int64_t tokens = 0;            // LLM forward tokens so far (this process and before a resume)
  double tokens_per_second = 0;  // this process
  double eta_seconds = 0;
  bool evaluated = false;  // an evaluation ran after this step (see val_* fields)
  double val_loss = 0, val_ppl = 0;
  bool checkpointed = false;
  bool resumed = false;  // first report after resuming from a checkpoint
};

struct TrainResult {
  std::string weights_path;   // out_dir/<name>.safetensors
  std::string manifest_path;  // out_dir/<name>.json
  std::string sha256;         // of the weights file
  int64_t steps = 0;
  int64_t tokens = 0;
  nlohmann::json curves;
};

// Runs (or resumes) a training. `validation` may be null (no validation, no PPL). Options are
// checked first (InvalidArgument naming the flag); errors from the model, files and torch are
// returned with context. `progress` (may be empty) is called after every optimizer step.
absl::StatusOr<TrainResult> Train(const model::Transformer& model, const TextWindows& train,
                                  const TextWindows* validation, const TrainOptions& options,
                                  const std::function<void(const TrainProgress&)>& progress = {});

}  // namespace ctxmem::train
