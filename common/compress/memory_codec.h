#pragma once
// MemoryCodec: a compressed Memory to and from a memory blob (DESIGN.md "Memory blob",
// docs/blob_format.md), and the identity of the model a memory is bound to. EncodeMemory turns
// a Memory into the raw tensors + metadata that blob::SealBlob/SealBlobToFile seal;
// DecodeMemory turns a verified blob back into a Memory for a given model, checking that its
// shapes fit the model. Keys stay pre-RoPE in both directions.
// Thread-safety: free functions, thread-safe; EncodedMemory is a plain value (not thread-safe
// to mutate).

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/blob/blob_metadata.h"
#include "common/blob/safetensors_writer.h"
#include "common/compress/append_state.h"
#include "common/compress/kv_format.h"
#include "common/compress/memory.h"
#include "common/weights/safetensors_file.h"

namespace ctxmem::blob {
class MemoryBlob;
}
namespace ctxmem::model {
class Model;
class Transformer;
}  // namespace ctxmem::model
namespace ctxmem::tokenizer {
class Tokenizer;
}

namespace ctxmem::compress {

// What a memory is bound to: a blob made with one model is only valid for the same weights
// and the same token ids.
struct ModelIdentity {
  std::string model_fingerprint;      // "sha256:<hex>" of the model file (or checkpoint files)
  std::string tokenizer_fingerprint;  // "sha256:<hex>" of the tokenizer; "" without one
  std::string model_name;             // what clients call the model, e.g. "SmolLM2-135M-Instruct"
};

// Fingerprints `model`: FingerprintFile(path) for a single file (GGUF), FingerprintFiles of
// config.json, model.safetensors.index.json and *.safetensors (sorted) for a checkpoint folder;
// the tokenizer by TokenizerFingerprint. Reads the whole model once (about 0.2 s per 100 MB).
// NotFound / Internal naming the path on I/O errors.
absl::StatusOr<ModelIdentity> ComputeModelIdentity(const model::Model& model,
                                                   std::string model_name);

// "sha256:<hex>" of a canonical serialization of everything that decides token ids: tokens and
// their types, merges in rank order, pre-tokenizer name, special ids and flags (layout in the
// .cc). The chat template is not part of it (it does not change what an id means).
absl::StatusOr<std::string> TokenizerFingerprint(const tokenizer::Tokenizer& tokenizer);

// The blob form of a Memory: tensors borrowing bytes owned by `storage`, plus metadata.
// Move-only in effect (moving keeps the borrowed pointers valid: tensor storage is on the heap).
struct EncodedMemory {
  std::vector<blob::RawTensor> tensors;  // layers.{i}.k / .v / .src, borrowing from storage
  blob::BlobMetadata metadata;
  std::vector<at::Tensor> storage;  // contiguous CPU tensors the RawTensors point into

  // Adds the contiguous CPU tensor `t` under `name`, kept alive in storage.
  void Add(std::string name, weights::StDtype dtype, at::Tensor t);
};

// Converts `memory` (any device) to blob tensors: per layer k, v as `kv_dtype` (F32, F16 or
// BF16) [n_kv_heads, len, head_dim] and src I64 [n_kv_heads, len]. `base` supplies memory_id,
// fingerprints, compression_config, created_unix_ms and extra; n_original_tokens, n_sinks,
// n_kept, kv_dtype and quantization are filled in here. InvalidArgument for another kv_dtype,
// an empty memory or inconsistent layer shapes; Internal for a torch failure.
absl::StatusOr<EncodedMemory> EncodeMemory(const Memory& memory, weights::StDtype kv_dtype,
                                           blob::BlobMetadata base);
// The same for any KvFormat, plus (when `state` is given) what continuing the memory needs:
// the "ctxmem.append_state" JSON, layers.{i}.rank when state->has_rank, and the hidden store
// hidden.{i}.{k,v,src,rank} (float formats: kv dtype; quantized: bf16). int8/int4 give a
// format-version-2 blob: U8 codes with F16 scales and zeros (KIVI, kv_quantizer.h), src as I32.
// InvalidArgument as above and for an invalid format or values KIVI cannot store.
absl::StatusOr<EncodedMemory> EncodeMemory(const Memory& memory, const KvFormat& format,
                                           blob::BlobMetadata base,
                                           const AppendState* state = nullptr);
// The KvFormat of a blob's metadata (its kv_dtype, quantization and group size). DataLoss for
// int8_per_channel (read-only legacy) and anything that is not a memory format.
absl::StatusOr<KvFormat> BlobKvFormat(const blob::BlobMetadata& metadata);

// Parses a kv_dtype name as the API spells it: "bf16" | "f16" | "f32" ("" = bf16).
// InvalidArgument listing the valid names.
absl::StatusOr<weights::StDtype> ParseKvDtype(absl::string_view name);
std::string KvDtypeName(weights::StDtype dtype);  // "bf16", "f16", "f32"

// Rebuilds the Memory of a verified blob for `model` (tensors in the model's dtype, on its
// device; int8_per_channel blobs are dequantized). The position mode comes from the blob's
// compression_config ("position_mode", default slots). FailedPrecondition naming the mismatch
// when the blob's layer count, kv heads or head_dim differ from the model's; DataLoss for a
// blob whose tensors are missing or inconsistent with its metadata; Internal for torch errors.
absl::StatusOr<Memory> DecodeMemory(const blob::MemoryBlob& blob, const model::Transformer& model);
// The same from the bytes of a verified blob (e.g. blob::BlobHandle::bytes() and
// info().metadata); the tensor table is re-read from the header and bounds-checked.
absl::StatusOr<Memory> DecodeMemory(absl::string_view verified_bytes,
                                    const blob::BlobMetadata& metadata,
                                    const model::Transformer& model);
// DecodeMemory plus the append state (ranks, hidden store, steps, plan length), for continuing
// the memory. FailedPrecondition when the blob was sealed without an append state; DataLoss
// when its state tensors are missing or do not fit.
absl::StatusOr<ResumableMemory> DecodeResumableMemory(absl::string_view verified_bytes,
                                                      const blob::BlobMetadata& metadata,
                                                      const model::Transformer& model);

}  // namespace ctxmem::compress
