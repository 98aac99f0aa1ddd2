#include "common/compress/config_json.h"

#include <string>

#include "common/compress/pruner_registry.h"
#include "common/learned/learned_method.h"
#include "common/learned/rcc_bridge_registry.h"

namespace ctxmem::compress {

nlohmann::json CompressionConfigToJson(const CompressionConfig& config) {
  nlohmann::json j;
  j["pruner"] = config.pruner;
  j["memory_type"] = std::string(MemoryTypeName(config.memory_type, config.decremental_chunk));
  j["decremental_chunk"] = config.decremental_chunk;
  j["chunk_size"] = config.chunk_size;
  j["memory_size"] = config.memory_size;
  j["schedule"] = std::string(ScheduleName(config.schedule));
  j["n_sink_tokens"] = config.n_sink_tokens;
  j["position_mode"] = std::string(PositionModeName(config.position_mode));
  j["score_mode"] = std::string(ScoreModeName(config.score_mode));
  j["score_window"] = config.score_window;
  j["conv_kernel_size"] = config.conv_kernel_size;
  j["double_compress_size"] = config.double_compress_size;
  j["seed"] = config.seed;
  j["expected_length"] = config.expected_length;
  // Only for the perceiver, so every other config (and the memory ids made from it) stays as
  // it was before these fields existed.
  // The weights are named by content, not by path (learned_method.h): a moved file keeps the
  // memory ids it made, a retrained one at the same path does not.
  if (config.pruner == "perceiver") {
    absl::StatusOr<std::string> id = learned::WeightsContentId(config.perceiver_weights);
    j["perceiver_weights"] = id.ok() ? *id : "unreadable:" + config.perceiver_weights;
    j["perceiver_routing"] = config.perceiver_routing;
  }
  if (config.pruner == "rcc") {  // the bridge by content, as the learned pruners' weights
    j["rcc_bridge"] = config.rcc_bridge;
    j["rcc_bridge_id"] = learned::RccBridgeContentId(config.rcc_bridge);
    j["rcc_window"] = config.rcc_window;
    j["rcc_rate"] = config.rcc_rate;
  }
  if (config.pruner == "perceiver_fuser" || config.pruner == "llm_fuser") {  // spec §7
    absl::StatusOr<std::string> id = learned::WeightsContentId(config.perceiver_weights);
    j["weights"] = id.ok() ? *id : "unreadable:" + config.perceiver_weights;
  }
  if (std::string id = PrunerRegistry::Global().ContentId(config.pruner); !id.empty()) {
    j["weights"] = id;
    j["perceiver_routing"] = config.perceiver_routing;
  }
  return j;
}

}  // namespace ctxmem::compress
