#pragma once
// The KIVI layout of a memory blob (format version 2, docs/blob_format.md): per layer i,
//   layers.{i}.k        U8 codes  [n_kv_heads, len, head_dim | ceil(head_dim / 2)]  (int8 | int4)
//   layers.{i}.k_scale  F16       [n_kv_heads, ceil(len / G), head_dim]   keys per channel
//   layers.{i}.k_zero   F16       same shape
//   layers.{i}.v        U8 codes  as k
//   layers.{i}.v_scale  F16       [n_kv_heads, len, ceil(head_dim / G)]   values per token
//   layers.{i}.v_zero   F16       same shape
//   layers.{i}.src      I32       [n_kv_heads, len]
// with metadata kv_dtype U8, quantization kivi_int8 | kivi_int4 and kv_group_size G. The
// arithmetic is kv_quantizer.h's; this file is where its tensors sit in a blob. MemoryCodec
// (memory_codec.h) is the entry point: EncodeMemory / DecodeMemory call these.
// Thread-safety: free functions, thread-safe.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/blob/blob_metadata.h"
#include "common/compress/blob_tensor_table.h"
#include "common/compress/kv_format.h"
#include "common/compress/kv_quantizer.h"
#include "common/compress/memory.h"
#include "common/compress/memory_codec.h"

namespace ctxmem::compress {

// `memory` (any device, every layer the same len >= 1) as the tensors above, metadata from
// `base` with the counts, format version, kv_dtype, quantization and group size filled in.
// InvalidArgument for an empty memory, inconsistent layer shapes or values KIVI cannot store;
// `format` must be int8 or int4 and valid.
absl::StatusOr<EncodedMemory> EncodeKiviMemory(const Memory& memory, const KvFormat& format,
                                               blob::BlobMetadata base);

// One layer's k (axis kTokens) or v (kChannels) from the codes, scale and zero tensors named,
// dequantized to fp32 [n_kv, len, head_dim] on the CPU. DataLoss naming the tensor when one is
// missing or its dtype or shape does not fit `format`, n_kv, len and head_dim.
absl::StatusOr<at::Tensor> DecodeKiviTensor(const BlobTensorTable& table,
                                            const std::string& codes_name,
                                            const std::string& scale_name,
                                            const std::string& zero_name, const KvFormat& format,
                                            KiviGroupAxis axis, int64_t n_kv, int64_t len,
                                            int64_t head_dim);

}  // namespace ctxmem::compress
