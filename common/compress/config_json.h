#pragma once
// The JSON form of a CompressionConfig, for evaluation and probing results (so a table row or a
// probe file says exactly which setting produced it).
// Thread-safety: a free function.

#include "common/compress/compression_config.h"
#include "nlohmann/json.hpp"

namespace ctxmem::compress {

// Every field of `config` under its C++ name; closed sets by their short names ("FM", "IMDC",
// "linear", "slots", "exact"). The memory type is "IMDC" when decremental_chunk is set on IM.
nlohmann::json CompressionConfigToJson(const CompressionConfig& config);

}  // namespace ctxmem::compress
