#include "common/compress/pruner_registry.h"

#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/compress/chunk_prefix_pruner.h"
#include "common/compress/compression_config.h"
#include "common/compress/conv_pruner.h"
#include "common/compress/h2o_pruner.h"
#include "common/compress/local_window_pruner.h"
#include "common/compress/no_compress_pruner.h"
#include "common/compress/random_pruner.h"
#include "common/compress/roco_pruner.h"
#include "common/compress/streaming_llm_pruner.h"
#include "common/compress/tova_pruner.h"
#include "common/learned/learned_pruners.h"
#include "common/status.h"

namespace ctxmem::compress {
namespace {

// Wraps a factory that cannot fail.
template <typename P, typename... Args>
PrunerRegistry::Factory Simple(Args... args) {
  return [=](const CompressionConfig&) -> absl::StatusOr<std::unique_ptr<Pruner>> {
    return std::unique_ptr<Pruner>(std::make_unique<P>(args...));
  };
}

}  // namespace

void RegisterBuiltinPruners(PrunerRegistry& registry) {
  // spec §3.
  registry.Register("h2o", Simple<H2oPruner>());
  registry.Register("streaming_llm", Simple<StreamingLlmPruner>());
  registry.Register("chunk_prefix", Simple<ChunkPrefixPruner>());
  registry.Register("tova", Simple<TovaPruner>());
  registry.Register("random",
                    [](const CompressionConfig& c) -> absl::StatusOr<std::unique_ptr<Pruner>> {
                      return std::unique_ptr<Pruner>(std::make_unique<RandomPruner>(c.seed));
                    });
  registry.Register("local_window", Simple<LocalWindowPruner>());
  registry.Register("no_compress", Simple<NoCompressPruner>());
  registry.Register("roco", Simple<RocoPruner>());
  // Learned methods (§3.9): common/learned/.
  learned::RegisterLearnedPruners(registry);
  for (const char* name : {"conv", "snapkv"}) {  // the authors' notebooks call conv "SnapKV"
    registry.Register(
        name, [](const CompressionConfig& c) { return ConvPruner::Create(c.conv_kernel_size); });
  }
}

PrunerRegistry& PrunerRegistry::Mutable() {
  static PrunerRegistry registry;
  static std::once_flag once;
  std::call_once(once, [] { RegisterBuiltinPruners(registry); });
  return registry;
}

const PrunerRegistry& PrunerRegistry::Global() { return Mutable(); }

void PrunerRegistry::Register(std::string name, Factory factory) {
  absl::MutexLock lock(&mu_);
  factories_[std::move(name)] = std::move(factory);
}

absl::Status PrunerRegistry::RegisterGlobal(std::string name, Factory factory,
                                            std::string content_id) {
  PrunerRegistry& r = Mutable();
  absl::MutexLock lock(&r.mu_);
  if (r.factories_.find(name) != r.factories_.end()) {
    auto it = r.content_ids_.find(name);
    if (it != r.content_ids_.end() && it->second == content_id) return absl::OkStatus();
    return absl::AlreadyExistsError(absl::StrCat(
        "method '", name, "' is already registered",
        it == r.content_ids_.end() ? " (a built-in method)" : absl::StrCat(" with ", it->second)));
  }
  r.content_ids_[name] = std::move(content_id);
  r.factories_[std::move(name)] = std::move(factory);
  return absl::OkStatus();
}

std::string PrunerRegistry::ContentId(std::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = content_ids_.find(name);
  return it == content_ids_.end() ? std::string() : it->second;
}

std::vector<std::string> PrunerRegistry::names() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, factory] : factories_) out.push_back(name);
  return out;
}

absl::Status PrunerRegistry::Check(std::string_view name) const {
  {
    absl::MutexLock lock(&mu_);
    if (factories_.find(name) != factories_.end()) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown pruner '", std::string(name),
                                                 "'; known: ", absl::StrJoin(names(), ", ")));
}

absl::StatusOr<std::unique_ptr<Pruner>> PrunerRegistry::Create(
    const CompressionConfig& config) const {
  Factory factory;
  {
    absl::MutexLock lock(&mu_);
    auto it = factories_.find(config.pruner);
    if (it != factories_.end()) factory = it->second;
  }
  if (!factory) return Check(config.pruner);
  return factory(config);
}

}  // namespace ctxmem::compress
