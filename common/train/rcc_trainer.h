#pragma once
// TrainRcc(): trains an RCC bridge (learned/rcc_bridge.h) around the frozen model, which is
// both encoder and decoder (docs/rcc.md), with the objectives of rcc_objective.h mixed by the
// given ratios. The loop is the part-1 trainer's (docs/training.md): AdamW, LrSchedule (linear
// warmup + cosine), gradient accumulation, clipping, checkpoints with exact resume, curves.
//
// Output folder (options.out_dir), as Train():
//   checkpoint/{weights.safetensors, optimizer.pt, state.json}  (written as checkpoint.tmp/,
//       renamed over; the bridge is saved fp32 there)
//   curves.json  train loss and accuracy per step; per evaluation the held-out reconstruction
//       token accuracy and loss, continuation loss, against the untrained stride bridge on the
//       same windows ("reference", computed once) and the LLM tokens so far;
//   <name>.safetensors (bf16 when save_bf16) + <name>.json manifest.
// Sample i of the stream: window TextWindows::Window(seed, i); its task and span start drawn
// from SplitMix64(seed ^ i), so a resumed run sees the same data.
// Thread-safety: one training per process (torch's global generator is seeded).

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "common/learned/rcc_bridge.h"
#include "common/train/rcc_objective.h"
#include "common/train/text_windows.h"
#include "common/train/trainer.h"

namespace ctxmem::train {

struct RccTrainOptions {
  std::string name = "rcc";
  learned::RccBridgeShape shape;  // variant, rank, window, rate (n_layers, hidden from the model)
  RccLossOptions loss;            // window, rate are taken from shape
  // Mixing ratios of the tasks (normalised; each >= 0, not all 0).
  double reconstruction = 1.0, continuation = 0.0, instruction = 0.0;
  std::string init_weights;  // start from this bridge file
  int64_t steps = 100;
  double lr = 1e-3;
  int64_t warmup = 10;
  double min_lr_ratio = 0.1;
  double weight_decay = 0.0;
  int64_t accum = 1;  // samples per optimizer step
  double clip = 1.0;
  uint64_t seed = 0;
  int64_t checkpoint_every = 10;
  int64_t eval_every = 10;
  int64_t val_windows = 4;
  bool save_bf16 = true;
  std::string out_dir;
  bool resume = false;
  int64_t stop_after_steps = 0;  // tests: Cancelled after this many steps of this call
  std::string command;
  nlohmann::json data_info;
};

// Windows of `train` / `validation` must be loss.window + loss.continuation tokens.
// InvalidArgument naming the option for bad options; errors from the model, files, torch.
absl::StatusOr<TrainResult> TrainRcc(
    const model::Transformer& model, const TextWindows& train, const TextWindows* validation,
    const RccTrainOptions& options, const std::function<void(const TrainProgress&)>& progress = {});

}  // namespace ctxmem::train
