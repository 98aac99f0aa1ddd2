#pragma once
// TrainMethod: what Train() trains, behind one interface: the module's parameters, its loss over
// a window, its file, and the registry name that runs a saved file (for the held-out PPL).
// MakeTrainMethod() is the trainer's dispatch on TrainOptions::method:
//   perceiver        PerceiverModule, PerceiverWindowLoss (objectives seed | next_mse | next_kl)
//   perceiver_fuser  PerceiverFuserModule, FuserWindowLoss (objective lm)
//   llm_fuser        LlmFuserModule, FuserWindowLoss (objective lm)
// Thread-safety: not thread-safe (one training at a time).

#include <torch/nn/module.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/train/perceiver_objective.h"
#include "nlohmann/json.hpp"

namespace ctxmem::model {
class Transformer;
}

namespace ctxmem::train {

struct TrainOptions;

class TrainMethod {
 public:
  virtual ~TrainMethod() = default;
  virtual torch::nn::Module& module() = 0;
  // The window's loss; backward_scale > 0 accumulates gradients (see the objectives).
  virtual absl::StatusOr<WindowLoss> Loss(const model::Transformer& model,
                                          absl::Span<const int32_t> window,
                                          double backward_scale) = 0;
  // The method's file (what --learned / perceiver_weights load), written atomically.
  virtual absl::Status Save(const std::string& path,
                            const std::map<std::string, std::string>& metadata) const = 0;
  // Registry name that runs a saved file from CompressionConfig::perceiver_weights.
  virtual std::string eval_pruner() const = 0;
  virtual std::string objective() const = 0;
  // The module's shape for the manifest's "options".
  virtual nlohmann::json shape() const = 0;
};

// "perceiver" | "perceiver_fuser" | "llm_fuser" for `model`: a fresh module (torch's generator,
// seeded by the caller) or, when `init_file` is given, that file's weights. InvalidArgument for
// another method, an objective the method does not have, or a file or shape that does not fit.
absl::StatusOr<std::unique_ptr<TrainMethod>> MakeTrainMethod(const TrainOptions& options,
                                                             const model::Transformer& model,
                                                             const std::string& init_file);

// OK for a method name MakeTrainMethod knows; InvalidArgument listing them otherwise.
absl::Status CheckTrainMethod(const std::string& method);

}  // namespace ctxmem::train
