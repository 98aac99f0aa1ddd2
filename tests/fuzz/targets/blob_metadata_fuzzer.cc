// Blob metadata (common/blob/blob_metadata: ParseBlobMetadata, Validate, ToMetadataEntries):
// entries built from the input (known keys with fuzzed values, plus fuzzed keys) must parse to
// an error or to metadata that, when valid, round-trips through its entries unchanged.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "common/blob/blob_metadata.h"
#include "tests/fuzz/targets/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ctxmem::blob;
  static const std::array<absl::string_view, 14> kKeys = {kKeyMagic,
                                                          kKeyHeaderSha256,
                                                          kKeyDataSha256,
                                                          kKeyFormatVersion,
                                                          kKeyMemoryId,
                                                          kKeyModelFingerprint,
                                                          kKeyTokenizerFingerprint,
                                                          kKeyCompressionConfig,
                                                          kKeyNOriginalTokens,
                                                          kKeyNSinks,
                                                          kKeyNKept,
                                                          kKeyKvDtype,
                                                          kKeyQuantization,
                                                          kKeyCreatedUnixMs};
  FuzzedDataProvider in(data, size);
  std::map<std::string, std::string> entries;
  // A plausible base most inputs keep, so the checks past the first missing key are reached.
  if (in.ConsumeBool()) {
    entries = {{std::string(kKeyMagic), std::string(kBlobMagic)},
               {std::string(kKeyFormatVersion), "1"},
               {std::string(kKeyModelFingerprint), "m"},
               {std::string(kKeyCompressionConfig), "{}"},
               {std::string(kKeyNOriginalTokens), "10"},
               {std::string(kKeyNSinks), "1"},
               {std::string(kKeyNKept), "[2,2]"},
               {std::string(kKeyKvDtype), "BF16"},
               {std::string(kKeyQuantization), "none"}};
  }
  while (in.remaining_bytes() > 0) {
    std::string key =
        in.ConsumeBool()
            ? std::string(kKeys[in.ConsumeIntegralInRange<size_t>(0, kKeys.size() - 1)])
            : in.ConsumeRandomLengthString(32);
    entries[key] = in.ConsumeRandomLengthString(256);
  }
  absl::StatusOr<BlobMetadata> parsed = ParseBlobMetadata(entries);
  if (!parsed.ok()) return 0;
  if (!parsed->Validate().ok()) return 0;
  std::map<std::string, std::string> again;
  for (const auto& [k, v] : ToMetadataEntries(*parsed)) again[k] = v;
  absl::StatusOr<BlobMetadata> reparsed = ParseBlobMetadata(again);
  CTXMEM_FUZZ_CHECK(reparsed.ok());
  CTXMEM_FUZZ_CHECK(*reparsed == *parsed);
  return 0;
}
