#include "common/model/generate_options.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace ctxmem::model {

absl::Status SamplingOptions::Validate() const {
  if (!std::isfinite(temperature) || temperature < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature=", temperature, " must be >= 0 (0 = greedy)"));
  }
  if (top_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("top_k=", top_k, " must be >= 0 (0 = off)"));
  }
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("top_p=", top_p, " must be in (0, 1]"));
  }
  if (!std::isfinite(repetition_penalty) || repetition_penalty <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("repetition_penalty=", repetition_penalty, " must be > 0 (1 = off)"));
  }
  return absl::OkStatus();
}

absl::Status GenerateOptions::Validate() const {
  if (max_new_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_new_tokens=", max_new_tokens, " must be >= 1"));
  }
  CTXMEM_RETURN_IF_ERROR(sampling.Validate());
  for (size_t i = 0; i < stop_strings.size(); ++i) {
    if (stop_strings[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("stop_strings[", i, "] is empty"));
    }
  }
  for (int32_t id : stop_ids) {
    if (id < 0) return absl::InvalidArgumentError(absl::StrCat("stop id ", id, " is negative"));
  }
  if (max_context < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_context=", max_context, " must be >= 0 (0 = the model's)"));
  }
  return absl::OkStatus();
}

}  // namespace ctxmem::model
