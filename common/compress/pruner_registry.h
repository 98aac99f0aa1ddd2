#pragma once
// PrunerRegistry: pruners by name (STYLE.md rule 36). Filled once by RegisterBuiltinPruners()
// under std::call_once; adding a pruner is one new file plus one line there. Learned methods
// whose weights are named at run time (`--learned NAME=FILE`, common/learned/learned_method.h)
// are added to the global registry with RegisterGlobal().
// Thread-safety: thread-safe; every method takes the registry's lock.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/compress/pruner.h"

namespace ctxmem::compress {

struct CompressionConfig;

class PrunerRegistry {
 public:
  // Makes a pruner from a (validated) config; InvalidArgument for settings it cannot use.
  using Factory =
      std::function<absl::StatusOr<std::unique_ptr<Pruner>>(const CompressionConfig& config)>;

  // The process-wide registry with every built-in pruner.
  static const PrunerRegistry& Global();

  // A pruner for config.pruner. InvalidArgument listing the known names for an unknown one.
  absl::StatusOr<std::unique_ptr<Pruner>> Create(const CompressionConfig& config) const;
  // OK when `name` is registered; otherwise the same InvalidArgument as Create().
  absl::Status Check(std::string_view name) const;
  // Registered names (aliases included), sorted.
  std::vector<std::string> names() const;

  // Used by RegisterBuiltinPruners() only; a second registration of a name replaces the first.
  void Register(std::string name, Factory factory);

  // Adds `name` to Global() at run time (a learned method with its weights). `content_id`
  // names what it computes with (e.g. "sha256:<hex>" of the weights) and goes into memory ids
  // (config_json.h). AlreadyExists when `name` is taken, unless by the same content_id (then
  // OK and nothing changes).
  static absl::Status RegisterGlobal(std::string name, Factory factory, std::string content_id);
  // What RegisterGlobal() recorded for `name`; "" for the built-in methods and unknown names.
  std::string ContentId(std::string_view name) const;

 private:
  static PrunerRegistry& Mutable();

  mutable absl::Mutex mu_;
  std::map<std::string, Factory, std::less<>> factories_;        // guarded by mu_
  std::map<std::string, std::string, std::less<>> content_ids_;  // guarded by mu_
};

// Adds every built-in pruner to `registry`. Called once for Global().
void RegisterBuiltinPruners(PrunerRegistry& registry);

}  // namespace ctxmem::compress
