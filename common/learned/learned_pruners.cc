#include "common/learned/learned_pruners.h"

#include <memory>
#include <utility>

#include "common/compress/compression_config.h"
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
  registry.Register("rcc", [](const compress::CompressionConfig&)
                               -> absl::StatusOr<std::unique_ptr<compress::Pruner>> {
    return absl::InvalidArgumentError(
        "rcc is not a pruner: it builds its memory in learned::RccCompress (compress::Compress "
        "runs it); it cannot run inside another method");
  });
}

}  // namespace ctxmem::learned
