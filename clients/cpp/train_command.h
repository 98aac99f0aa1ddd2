#pragma once
// `ctxmem train`: trains a learned compressor around the frozen model (common/train/,
// docs/training.md) on the books of --data (tools/fetch_training_text.py: DIR/train/*.txt,
// DIR/validation/*.txt), writing checkpoints, curves (JSON + PNG) and the trained weights with
// their manifest into --out. A progress bar (step, loss, tokens/s, ETA) goes to stderr.
// --resume continues from --out/checkpoint exactly (same data position, optimizer state).

#include <cstdint>
#include <string>

#include "CLI/CLI.hpp"
#include "clients/cpp/model_flags.h"
#include "clients/cpp/train_rcc_command.h"

namespace ctxmem::cli {

struct TrainArgs {
  ModelFlags model;
  std::string method = "perceiver";  // perceiver | perceiver_fuser | llm_fuser
  std::string objective = "seed";    // perceiver: seed | next_mse | next_kl
  std::string data_dir;
  std::string out_dir;
  std::string name;  // default: <method>_<objective>
  int64_t steps = 100;
  double lr = 1e-3;
  int64_t warmup = 10;
  double min_lr_ratio = 0.1;
  double weight_decay = 0.01;
  int64_t batch = 1;
  int64_t accum = 1;
  double clip = 1.0;
  uint64_t seed = 0;
  int64_t chunk_size = 512;
  int64_t memory_size = 128;
  int64_t n_sinks = 4;
  int64_t n_chunks = 4;
  double aux_weight = 1.0;
  int64_t query_len = 64;
  int64_t d_query = 96;
  double temperature = 1.0;
  std::string init_weights;
  int64_t fuse_k = 4;              // perceiver_fuser
  std::string fuser_norm = "pre";  // perceiver_fuser: pre | seed
  int64_t lora_rank = 16;          // llm_fuser
  double lora_alpha = 0;           // llm_fuser; <= 0: 2 * rank
  int64_t checkpoint_every = 10;
  int64_t eval_every = 10;
  int64_t val_windows = 2;
  bool no_eval_ppl = false;
  bool resume = false;
  std::string python = "python3";
  bool no_plot = false;
  RccTrainFlags rcc;  // --method rcc
};

// Adds the `train` subcommand to `app`; `args` must outlive the parse.
CLI::App* AddTrainCommand(CLI::App* app, TrainArgs* args);

// Runs it; `command_line` is recorded in the manifest. Returns the exit code.
int RunTrain(const TrainArgs& args, const std::string& command_line);

}  // namespace ctxmem::cli
