#include "common/compress/append_state.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace ctxmem::compress {

std::string AppendState::ToJson() const {
  nlohmann::json j;
  j["n_steps_done"] = n_steps_done;
  j["planned_length"] = planned_length;
  j["rank"] = has_rank;
  j["hidden"] = !hidden.empty();
  return j.dump();  // keys sorted by nlohmann's default map
}

absl::StatusOr<AppendState> AppendState::FromJson(const std::string& json, bool* has_hidden) {
  nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  const auto bad = [&](const char* what) {
    return absl::DataLossError(absl::StrCat("blob append_state ", what, ": ", json));
  };
  if (j.is_discarded() || !j.is_object()) return bad("is not a JSON object");
  for (const char* key : {"n_steps_done", "planned_length"}) {
    if (!j.contains(key) || !j[key].is_number_integer()) return bad("lacks an integer field");
  }
  for (const char* key : {"rank", "hidden"}) {
    if (!j.contains(key) || !j[key].is_boolean()) return bad("lacks a boolean field");
  }
  AppendState s;
  s.n_steps_done = j["n_steps_done"].get<int64_t>();
  s.planned_length = j["planned_length"].get<int64_t>();
  s.has_rank = j["rank"].get<bool>();
  if (s.n_steps_done < 1 || s.planned_length < -1) return bad("has out-of-range counts");
  if (has_hidden != nullptr) *has_hidden = j["hidden"].get<bool>();
  return s;
}

}  // namespace ctxmem::compress
