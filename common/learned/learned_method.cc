#include "common/learned/learned_method.h"

#include <fstream>
#include <memory>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/blob/sha256.h"
#include "common/compress/compression_config.h"
#include "common/compress/pruner_registry.h"
#include "common/learned/llm_fuser.h"
#include "common/learned/perceiver_fuser.h"
#include "common/learned/perceiver_pruner.h"
#include "common/learned/perceiver_weights.h"
#include "common/learned/rcc_bridge_registry.h"
#include "common/status.h"
#include "common/weights/safetensors_file.h"

namespace ctxmem::learned {
namespace {

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> WeightsContentId(const std::string& path) {
  // Hashed on every call (a 4 MB file takes milliseconds): a cache keyed by mtime could miss a
  // file rewritten within one timestamp tick.
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("learned weights ", path, " not found"));
  std::stringstream ss;
  ss << in.rdbuf();
  CTXMEM_ASSIGN_OR_RETURN(std::string hex, blob::Sha256Hex(ss.str()));
  return absl::StrCat("sha256:", hex);
}

absl::Status RegisterLearned(const std::string& name, const std::string& path) {
  if (!ValidName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "learned method name '", name, "' must be 1-64 of [a-z0-9_] (--learned NAME=FILE)"));
  }
  CTXMEM_ASSIGN_OR_RETURN(std::string id, WeightsContentId(path));
  std::string method = "perceiver";
  {
    CTXMEM_ASSIGN_OR_RETURN(std::unique_ptr<weights::SafetensorsFile> file,
                            weights::SafetensorsFile::Open(path));
    if (auto it = file->metadata().find("ctxmem.method"); it != file->metadata().end()) {
      method = it->second;
    }
  }
  if (method == "rcc") return RegisterRccBridge(name, path, id);  // rcc_bridge = name
  if (method == "perceiver_fuser") {  // spec §7: weights loaded once, shared
    CTXMEM_ASSIGN_OR_RETURN(PerceiverFuserWeights w, PerceiverFuserWeights::Load(path));
    auto shared = std::make_shared<const PerceiverFuserWeights>(std::move(w));
    return compress::PrunerRegistry::RegisterGlobal(
        name,
        [shared](const compress::CompressionConfig&)
            -> absl::StatusOr<std::unique_ptr<compress::Pruner>> {
          return std::unique_ptr<compress::Pruner>(std::make_unique<PerceiverFuser>(shared));
        },
        id);
  }
  if (method == "llm_fuser") {
    CTXMEM_ASSIGN_OR_RETURN(LlmFuserWeights w, LlmFuserWeights::Load(path));
    auto shared = std::make_shared<const LlmFuserWeights>(std::move(w));
    return compress::PrunerRegistry::RegisterGlobal(
        name,
        [shared](const compress::CompressionConfig&)
            -> absl::StatusOr<std::unique_ptr<compress::Pruner>> {
          return std::unique_ptr<compress::Pruner>(std::make_unique<LlmFuser>(shared));
        },
        id);
  }
  if (method != "perceiver") {
    return absl::InvalidArgumentError(absl::StrCat(path, " holds a '", method,
                                                   "' method; this build runs learned "
                                                   "perceiver, perceiver_fuser and llm_fuser "
                                                   "files"));
  }
  CTXMEM_ASSIGN_OR_RETURN(PerceiverWeights w, PerceiverWeights::Load(path));
  auto shared = std::make_shared<const PerceiverWeights>(std::move(w));
  compress::PrunerRegistry::Factory factory = [shared](const compress::CompressionConfig& c)
      -> absl::StatusOr<std::unique_ptr<compress::Pruner>> {
    CTXMEM_ASSIGN_OR_RETURN(PerceiverRouting routing, ParsePerceiverRouting(c.perceiver_routing));
    CTXMEM_ASSIGN_OR_RETURN(std::unique_ptr<PerceiverPruner> p,
                            PerceiverPruner::Create(shared, routing, c.seed));
    return std::unique_ptr<compress::Pruner>(std::move(p));
  };
  return compress::PrunerRegistry::RegisterGlobal(name, std::move(factory), id);
}

absl::Status RegisterLearnedSpec(std::string_view spec) {
  const size_t eq = spec.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == spec.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--learned '", std::string(spec), "': expected NAME=FILE"));
  }
  return RegisterLearned(std::string(spec.substr(0, eq)), std::string(spec.substr(eq + 1)));
}

}  // namespace ctxmem::learned
