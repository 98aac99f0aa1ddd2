#pragma once
// PrunerRegistry: pruners by name (STYLE.md rule 36). Filled once by RegisterBuiltinPruners()
// under std::call_once; adding a pruner is one new file plus one line there.
// Thread-safety: thread-safe; Global() is filled before it is returned and never changes after.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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

 private:
  std::map<std::string, Factory, std::less<>> factories_;
};

// Adds every built-in pruner to `registry`. Called once for Global().
void RegisterBuiltinPruners(PrunerRegistry& registry);

}  // namespace ctxmem::compress
