#include "common/learned/rcc_bridge_registry.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"

namespace ctxmem::learned {
namespace {

struct Entry {
  std::shared_ptr<const RccBridge> bridge;
  std::string content_id;
};

struct Registry {
  absl::Mutex mu;
  std::map<std::string, Entry, std::less<>> entries;  // guarded by mu
};

Registry& Global() {
  static Registry* r = new Registry();
  return *r;
}

absl::Status Unknown(std::string_view name, const Registry& r) {
  std::vector<std::string> names = {std::string(kRccStrideBridge)};
  for (const auto& [n, e] : r.entries) names.push_back(n);
  return absl::InvalidArgumentError(absl::StrCat("unknown rcc_bridge '", std::string(name),
                                                 "'; known: ", absl::StrJoin(names, ", "),
                                                 " (trained bridges: --learned NAME=FILE)"));
}

}  // namespace

absl::Status RegisterRccBridge(const std::string& name, const std::string& path,
                               const std::string& content_id) {
  if (name == kRccStrideBridge) {
    return absl::InvalidArgumentError("rcc bridge name 'stride' is built in");
  }
  CTXMEM_ASSIGN_OR_RETURN(RccBridge bridge, RccBridge::Load(path));
  Registry& r = Global();
  absl::MutexLock lock(&r.mu);
  if (auto it = r.entries.find(name); it != r.entries.end()) {
    if (it->second.content_id == content_id) return absl::OkStatus();
    return absl::AlreadyExistsError(
        absl::StrCat("rcc bridge '", name, "' is already registered with other weights"));
  }
  r.entries[name] = {std::make_shared<const RccBridge>(std::move(bridge)), content_id};
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const RccBridge>> FindRccBridge(std::string_view name,
                                                               int64_t n_layers, int64_t hidden) {
  if (name == kRccStrideBridge) {
    return std::make_shared<const RccBridge>(RccBridge::Stride(n_layers, hidden));
  }
  Registry& r = Global();
  absl::MutexLock lock(&r.mu);
  auto it = r.entries.find(name);
  if (it == r.entries.end()) return Unknown(name, r);
  CTXMEM_RETURN_IF_ERROR(it->second.bridge->CheckFits(n_layers, hidden));
  return it->second.bridge;
}

absl::Status CheckRccBridge(std::string_view name) {
  if (name == kRccStrideBridge) return absl::OkStatus();
  Registry& r = Global();
  absl::MutexLock lock(&r.mu);
  if (r.entries.find(name) == r.entries.end()) return Unknown(name, r);
  return absl::OkStatus();
}

std::string RccBridgeContentId(std::string_view name) {
  if (name == kRccStrideBridge) return std::string(kRccStrideBridge);
  Registry& r = Global();
  absl::MutexLock lock(&r.mu);
  auto it = r.entries.find(name);
  return it == r.entries.end() ? "" : it->second.content_id;
}

}  // namespace ctxmem::learned
