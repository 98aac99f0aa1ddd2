#include "common/compress/kv_format.h"

#include "absl/strings/str_cat.h"

namespace ctxmem::compress {
namespace {

struct KvDtypeEntry {
  KvDtype dtype;
  std::string_view name;
  int bits;
};
constexpr KvDtypeEntry kKvDtypes[] = {
    {KvDtype::kBF16, "bf16", 16}, {KvDtype::kF16, "f16", 16},  {KvDtype::kF32, "f32", 32},
    {KvDtype::kInt8, "int8", 8},  {KvDtype::kInt4, "int4", 4},
};

}  // namespace

absl::StatusOr<KvDtype> ParseKvDtypeName(std::string_view name) {
  if (name.empty()) return KvDtype::kBF16;
  for (const KvDtypeEntry& e : kKvDtypes) {
    if (e.name == name) return e.dtype;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "kv_dtype '", std::string(name), "' is not known; valid: bf16, f16, f32, int8, int4"));
}

std::string_view KvDtypeLabel(KvDtype dtype) {
  for (const KvDtypeEntry& e : kKvDtypes) {
    if (e.dtype == dtype) return e.name;
  }
  return "?";
}

int KvDtypeBits(KvDtype dtype) {
  for (const KvDtypeEntry& e : kKvDtypes) {
    if (e.dtype == dtype) return e.bits;
  }
  return 0;
}

absl::Status KvFormat::Validate() const {
  if (group_size < 1 || group_size > kMaxKvGroupSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv_group_size=", group_size, " must be in [1, ", kMaxKvGroupSize, "]"));
  }
  return absl::OkStatus();
}

}  // namespace ctxmem::compress
