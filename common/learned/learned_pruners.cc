#include "common/learned/learned_pruners.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/compress/compression_config.h"
#include "common/learned/llm_fuser.h"
#include "common/learned/mean_fuser.h"
#include "common/learned/perceiver_fuser.h"
#include "common/learned/perceiver_pruner.h"
#include "common/learned/perceiver_weights.h"
#include "common/status.h"

namespace ctxmem::learned {

void RegisterLearnedPruners(compress::PrunerRegistry& registry) {
  // §3.9: trained weights from CompressionConfig::perceiver_weights; none -> a clear error.
  registry.Register(
      "perceiver",
      [](const compress::CompressionConfig& c)
          -> absl::StatusOr<std::unique_ptr<compress::Pruner>> {
        if (c.perceiver_weights.empty()) return PerceiverPruner::NoWeightsError();
        CTXMEM_ASSIGN_OR_RETURN(PerceiverRouting routing,
                                ParsePerceiverRouting(c.perceiver_routing));
        CTXMEM_ASSIGN_OR_RETURN(PerceiverWeights weights,
                                PerceiverWeights::Load(c.perceiver_weights));
        CTXMEM_ASSIGN_OR_RETURN(
            std::unique_ptr<PerceiverPruner> pruner,
            PerceiverPruner::Create(std::make_shared<const PerceiverWeights>(std::move(weights)),
                                    routing, c.seed));
        return std::unique_ptr<compress::Pruner>(std::move(pruner));
      });
  // RCC is not a pruner: Compress() hands pruner=rcc to RccCompress (docs/rcc.md). The name is
  // registered so configs validate and the method is listed with the others.
  registry.Register(
      "rcc",
      [](const compress::CompressionConfig&) -> absl::StatusOr<std::unique_ptr<compress::Pruner>> {
        return absl::InvalidArgumentError(
            "rcc is not a pruner: it builds its memory in learned::RccCompress (compress::Compress "
            "runs it); it cannot run inside another method");
      });
  // §7 fusers: mean_fuser is training-free; the learned two read CompressionConfig's
  // perceiver_weights (or come as --learned NAME=FILE, learned_method.h).
  registry.Register("mean_fuser", [](const compress::CompressionConfig&) {
    return absl::StatusOr<std::unique_ptr<compress::Pruner>>(std::make_unique<MeanFuser>());
  });
  registry.Register("perceiver_fuser", [](const compress::CompressionConfig& c) {
    return MakeFileMethod("perceiver_fuser", c.perceiver_weights);
  });
  registry.Register("llm_fuser", [](const compress::CompressionConfig& c) {
    return MakeFileMethod("llm_fuser", c.perceiver_weights);
  });
}

absl::StatusOr<std::unique_ptr<compress::Pruner>> MakeFileMethod(const std::string& method,
                                                                 const std::string& path) {
  if (method == "perceiver_fuser") {
    if (path.empty()) return PerceiverFuser::NoWeightsError();
    CTXMEM_ASSIGN_OR_RETURN(PerceiverFuserWeights w, PerceiverFuserWeights::Load(path));
    return std::unique_ptr<compress::Pruner>(std::make_unique<PerceiverFuser>(
        std::make_shared<const PerceiverFuserWeights>(std::move(w))));
  }
  if (method == "llm_fuser") {
    if (path.empty()) return LlmFuser::NoWeightsError();
    CTXMEM_ASSIGN_OR_RETURN(LlmFuserWeights w, LlmFuserWeights::Load(path));
    return std::unique_ptr<compress::Pruner>(
        std::make_unique<LlmFuser>(std::make_shared<const LlmFuserWeights>(std::move(w))));
  }
  return absl::InvalidArgumentError(absl::StrCat("no learned fuser '", method, "'"));
}

}  // namespace ctxmem::learned
