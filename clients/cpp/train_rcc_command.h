#pragma once
// `ctxmem train --method rcc`: trains an RCC bridge (common/train/rcc_trainer.h) with the
// train command's shared flags (--data, --out, --steps, --lr, ..., --accum as samples per step)
// plus the --rcc-* flags and --mix below.

#include <cstdint>
#include <string>

#include "CLI/CLI.hpp"

namespace ctxmem::cli {

struct TrainArgs;

struct RccTrainFlags {
  std::string variant = "residual";  // residual (zero-init) | paper
  int64_t rank = 0;                  // 0 = full rank
  int64_t window = 512;
  int64_t rate = 16;
  int64_t hint = 16;
  int64_t span = 128;
  int64_t continuation = 128;
  // Task mixing ratios, "reconstruction=0.7,continuation=0.3,instruction=0".
  std::string mix = "reconstruction=1";
  bool f32 = false;  // save the final bridge in fp32 (default bf16)
};

// Registers the --rcc-* and --mix flags on the train command.
void AddRccTrainFlags(CLI::App* cmd, RccTrainFlags* flags);

// Runs the rcc training; returns the exit code.
int RunTrainRcc(const TrainArgs& args, const std::string& command_line);

}  // namespace ctxmem::cli
