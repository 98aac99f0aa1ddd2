#include "common/compress/memory_codec.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/blob/blob_id.h"
#include "common/blob/memory_blob.h"
#include "common/compress/compression_config.h"
#include "common/compress/kv_quantizer.h"
#include "common/model/model.h"
#include "common/model/torch_call.h"
#include "common/model/transformer.h"
#include "common/status.h"
#include "common/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace ctxmem::compress {
namespace {

namespace fs = std::filesystem;
using weights::StDtype;

// Tokenizer serialization hashed by TokenizerFingerprint (integers little-endian):
//   "ctxmem.tokenizer.v1" 0x00
//   u64 n_tokens, then per token: u64 len, token text bytes, i32 token type
//   u64 n_merges, then per merge: u64 len, left bytes, u64 len, right bytes
//   u64 len, pre-tokenizer name bytes
//   i32 bos, eos, unk, pad, bpe_unk ids
//   u8 add_bos, add_eos, ignore_merges
constexpr absl::string_view kTokenizerDomain{"ctxmem.tokenizer.v1\0", 20};

void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutI32(std::string* out, int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(u >> (8 * i)));
}
void PutString(std::string* out, const std::string& s) {
  PutU64(out, s.size());
  out->append(s);
}

// A tensor of a verified blob, borrowed from its bytes.
struct TensorRef {
  StDtype dtype = StDtype::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  uint64_t n_bytes = 0;
};
using TensorLookup = std::function<absl::StatusOr<TensorRef>(const std::string& name)>;

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<at::ScalarType> TorchType(StDtype dtype) {
  switch (dtype) {
    case StDtype::kF32:
      return at::kFloat;
    case StDtype::kF16:
      return at::kHalf;
    case StDtype::kBF16:
      return at::kBFloat16;
    case StDtype::kI64:
      return at::kLong;
    case StDtype::kI8:
      return at::kChar;
    case StDtype::kI32:
      return at::kInt;
    case StDtype::kU8:
      return at::kByte;
    default:
      return absl::DataLossError(absl::StrCat(
          "blob tensor dtype ", AsAbsl(weights::StDtypeName(dtype)), " is not a memory dtype"));
  }
}

// An owned CPU copy of a blob tensor.
absl::StatusOr<at::Tensor> ToTorch(const TensorRef& ref) {
  CTXMEM_ASSIGN_OR_RETURN(const at::ScalarType type, TorchType(ref.dtype));
  at::Tensor out;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("blob tensor", [&] {
    out = at::empty(ref.shape, at::TensorOptions().dtype(type));
    if (ref.n_bytes > 0) std::memcpy(out.data_ptr(), ref.data, ref.n_bytes);
  }));
  return out;
}

absl::StatusOr<TensorRef> Need(const TensorLookup& lookup, const std::string& name, StDtype dtype,
                               const std::vector<int64_t>& shape) {
  CTXMEM_ASSIGN_OR_RETURN(TensorRef ref, lookup(name));
  if (ref.dtype != dtype || ref.shape != shape) {
    return absl::DataLossError(
        absl::StrCat("blob tensor ", name, " is ", AsAbsl(weights::StDtypeName(ref.dtype)), " ",
                     ShapeString(ref.shape), ", its metadata says ",
                     AsAbsl(weights::StDtypeName(dtype)), " ", ShapeString(shape)));
  }
  return ref;
}

absl::StatusOr<PositionMode> BlobPositionMode(const blob::BlobMetadata& metadata) {
  nlohmann::json config = nlohmann::json::parse(metadata.compression_config, nullptr,
                                                /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return absl::DataLossError("blob compression_config is not a JSON object");
  }
  auto it = config.find("position_mode");
  if (it == config.end()) return PositionMode::kSlots;
  if (!it->is_string()) return absl::DataLossError("blob position_mode is not a string");
  absl::StatusOr<PositionMode> mode = ParsePositionMode(it->get<std::string>());
  if (!mode.ok()) return absl::DataLossError(absl::StrCat("blob ", mode.status().message()));
  return mode;
}

// One layer's k or v from a KIVI blob: codes and F16 scale/zero, dequantized to fp32.
absl::StatusOr<at::Tensor> DecodeKivi(const TensorLookup& lookup, const std::string& codes_name,
                                      const std::string& scale_name, const std::string& zero_name,
                                      const KvFormat& format, KiviGroupAxis axis, int64_t n_kv,
                                      int64_t len, int64_t head_dim) {
  CTXMEM_ASSIGN_OR_RETURN(
      TensorRef codes_ref,
      Need(lookup, codes_name, StDtype::kU8, KiviCodeShape(n_kv, len, head_dim, format.dtype)));
  const std::vector<int64_t> scale_shape =
      KiviScaleShape(n_kv, len, head_dim, format.group_size, axis);
  CTXMEM_ASSIGN_OR_RETURN(TensorRef scale_ref,
                          Need(lookup, scale_name, StDtype::kF16, scale_shape));
  CTXMEM_ASSIGN_OR_RETURN(TensorRef zero_ref, Need(lookup, zero_name, StDtype::kF16, scale_shape));
  QuantizedTensor q;
  CTXMEM_ASSIGN_OR_RETURN(q.codes, ToTorch(codes_ref));
  CTXMEM_ASSIGN_OR_RETURN(q.scale, ToTorch(scale_ref));
  CTXMEM_ASSIGN_OR_RETURN(q.zero, ToTorch(zero_ref));
  absl::StatusOr<at::Tensor> out = KiviDequantize(q, format, axis, len, head_dim);
  if (!out.ok()) return absl::DataLossError(absl::StrCat("blob ", out.status().message()));
  return out;
}

// A src tensor [n_kv, len] or [len], I64 (or I32 in version 2), as int64 [n_kv, len].
absl::StatusOr<at::Tensor> DecodeSrc(const TensorLookup& lookup, const std::string& name,
                                     int64_t n_kv, int64_t len) {
  CTXMEM_ASSIGN_OR_RETURN(TensorRef ref, lookup(name));
  if ((ref.dtype != StDtype::kI64 && ref.dtype != StDtype::kI32) || ref.shape.empty() ||
      ref.shape.back() != len ||
      !(ref.shape.size() == 1 || (ref.shape.size() == 2 && ref.shape[0] == n_kv))) {
    return absl::DataLossError(absl::StrCat("blob tensor ", name, " is ", ShapeString(ref.shape),
                                            ", expected [", n_kv, ", ", len, "] I64 or I32"));
  }
  CTXMEM_ASSIGN_OR_RETURN(at::Tensor src, ToTorch(ref));
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("decode src", [&] {
    src = src.to(at::kLong);
    if (src.dim() == 1) src = src.unsqueeze(0).expand({n_kv, len}).contiguous();
  }));
  return src;
}

absl::StatusOr<Memory> Decode(const TensorLookup& lookup, const blob::BlobMetadata& m,
                              const model::Transformer& model) {
  const model::ModelConfig& c = model.config();
  if (m.n_layers() != c.n_layers) {
    return absl::FailedPreconditionError(absl::StrCat("memory has ", m.n_layers(),
                                                      " layers, the model has ", c.n_layers,
                                                      " (the blob was made with another model)"));
  }
  const bool int8 = m.quantization == blob::BlobQuantization::kInt8PerChannel;
  const bool kivi = blob::IsKivi(m.quantization);
  KvFormat format;
  if (kivi) {
    CTXMEM_ASSIGN_OR_RETURN(format, BlobKvFormat(m));
  }
  CTXMEM_ASSIGN_OR_RETURN(PositionMode position_mode, BlobPositionMode(m));
  Memory memory;
  memory.n_sinks = m.n_sinks;
  memory.fused = m.fused_entries;
  memory.n_tokens = m.n_original_tokens;
  memory.position_mode = position_mode;
  if (m.n_layers() == 0) return memory;
  const int64_t len = m.n_kept[0];
  for (int64_t i = 1; i < m.n_layers(); ++i) {
    if (m.n_kept[i] != len) {
      return absl::FailedPreconditionError(
          absl::StrCat("memory layer ", i, " keeps ", m.n_kept[i], " entries, layer 0 keeps ", len,
                       "; this engine needs the same length in every layer"));
    }
  }
  if (len == 0) return memory;
  const auto model_type = model.dtype();
  const auto device = model.device();
  const int64_t code_dim =
      kivi ? KiviCodeShape(c.n_kv_heads, len, c.head_dim, format.dtype)[2] : c.head_dim;
  for (int64_t i = 0; i < m.n_layers(); ++i) {
    const std::string k_name = blob::KeyTensorName(i);
    CTXMEM_ASSIGN_OR_RETURN(TensorRef k_ref, lookup(k_name));
    // The model's shape is checked first: a different model is FailedPrecondition, not loss.
    if (k_ref.shape.size() != 3 || k_ref.shape[0] != c.n_kv_heads || k_ref.shape[2] != code_dim) {
      return absl::FailedPreconditionError(
          absl::StrCat("memory layer ", i, " keys are ", ShapeString(k_ref.shape),
                       ", the model needs [", c.n_kv_heads, " kv heads, ", len, ", ", c.head_dim,
                       " head_dim] (the blob was made with another model)"));
    }
    CTXMEM_ASSIGN_OR_RETURN(at::Tensor src,
                            DecodeSrc(lookup, blob::SrcTensorName(i), c.n_kv_heads, len));
    at::Tensor k, v;  // [n_kv_heads, len, head_dim]
    if (kivi) {
      CTXMEM_ASSIGN_OR_RETURN(
          k, DecodeKivi(lookup, k_name, blob::KeyScaleTensorName(i), blob::KeyZeroTensorName(i),
                        format, KiviGroupAxis::kTokens, c.n_kv_heads, len, c.head_dim));
      CTXMEM_ASSIGN_OR_RETURN(
          v, DecodeKivi(lookup, blob::ValueTensorName(i), blob::ValueScaleTensorName(i),
                        blob::ValueZeroTensorName(i), format, KiviGroupAxis::kChannels,
                        c.n_kv_heads, len, c.head_dim));
    } else {
      const std::vector<int64_t> kv_shape = {c.n_kv_heads, len, c.head_dim};
      CTXMEM_ASSIGN_OR_RETURN(k_ref, Need(lookup, k_name, m.kv_dtype, kv_shape));
      CTXMEM_ASSIGN_OR_RETURN(TensorRef v_ref,
                              Need(lookup, blob::ValueTensorName(i), m.kv_dtype, kv_shape));
      CTXMEM_ASSIGN_OR_RETURN(k, ToTorch(k_ref));
      CTXMEM_ASSIGN_OR_RETURN(v, ToTorch(v_ref));
    }
    at::Tensor k_scale, v_scale;  // [n_kv_heads, 1, head_dim]
    if (int8) {
      const std::vector<int64_t> scale_shape = {c.n_kv_heads, 1, c.head_dim};
      CTXMEM_ASSIGN_OR_RETURN(
          TensorRef ks, Need(lookup, blob::KeyScaleTensorName(i), StDtype::kF32, scale_shape));
      CTXMEM_ASSIGN_OR_RETURN(
          TensorRef vs, Need(lookup, blob::ValueScaleTensorName(i), StDtype::kF32, scale_shape));
      CTXMEM_ASSIGN_OR_RETURN(k_scale, ToTorch(ks));
      CTXMEM_ASSIGN_OR_RETURN(v_scale, ToTorch(vs));
    }
    LayerMemory layer;
    bool src_ok = true;
    CTXMEM_RETURN_IF_ERROR(model::TorchCall("decode memory", [&] {
      if (int8) {
        k = k.to(at::kFloat) * k_scale;
        v = v.to(at::kFloat) * v_scale;
      }
      src_ok = src.min().item<int64_t>() >= 0 &&
               (m.n_original_tokens == 0 || src.max().item<int64_t>() < m.n_original_tokens);
      layer.k = k.to(device, model_type).contiguous();
      layer.v = v.to(device, model_type).contiguous();
      layer.src = src.to(device);
      layer.rank = at::zeros({c.n_kv_heads, len}, at::TensorOptions().dtype(at::kFloat))
                       .to(device);  // [n_kv_heads, len]; ranks only with an append state
    }));
    if (!src_ok) {
      return absl::DataLossError(absl::StrCat("blob tensor ", blob::SrcTensorName(i),
                                              " holds stream indices outside [0, ",
                                              m.n_original_tokens, ")"));
    }
    memory.layers.push_back(std::move(layer));
  }
  return memory;
}

// The tensor table of a verified blob's header, bounds-checked against the bytes.
absl::StatusOr<TensorLookup> TableOf(absl::string_view bytes) {
  if (bytes.size() < 8) return absl::DataLossError("blob is shorter than 8 bytes");
  uint64_t n_header = 0;
  for (int i = 0; i < 8; ++i) {
    n_header |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  }
  if (n_header > bytes.size() - 8) return absl::DataLossError("blob header length past the end");
  auto header = std::make_shared<nlohmann::json>(nlohmann::json::parse(
      bytes.begin() + 8, bytes.begin() + 8 + n_header, nullptr, /*allow_exceptions=*/false));
  if (header->is_discarded() || !header->is_object()) {
    return absl::DataLossError("blob header is not a JSON object");
  }
  const uint8_t* data = reinterpret_cast<const uint8_t*>(bytes.data()) + 8 + n_header;
  const uint64_t data_bytes = bytes.size() - 8 - n_header;
  return TensorLookup(
      [header, data, data_bytes](const std::string& name) -> absl::StatusOr<TensorRef> {
        auto it = header->find(name);
        if (it == header->end())
          return absl::DataLossError(absl::StrCat("blob has no tensor ", name));
        const nlohmann::json& t = *it;
        const auto bad = [&] {
          return absl::DataLossError(absl::StrCat("blob tensor ", name, " entry is malformed"));
        };
        if (!t.is_object() || !t.contains("dtype") || !t["dtype"].is_string() ||
            !t.contains("shape") || !t["shape"].is_array() || !t.contains("data_offsets") ||
            !t["data_offsets"].is_array() || t["data_offsets"].size() != 2) {
          return bad();
        }
        TensorRef ref;
        absl::StatusOr<StDtype> dtype = weights::ParseStDtype(t["dtype"].get<std::string>());
        if (!dtype.ok()) return bad();
        ref.dtype = *dtype;
        uint64_t n_elements = 1;
        for (const auto& d : t["shape"]) {
          if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 40)) return bad();
          ref.shape.push_back(d.get<int64_t>());
          n_elements *= d.get<uint64_t>();
          if (n_elements > (uint64_t{1} << 40)) return bad();
        }
        const auto& off = t["data_offsets"];
        if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) return bad();
        const uint64_t begin = off[0].get<uint64_t>();
        const uint64_t end = off[1].get<uint64_t>();
        if (begin > end || end > data_bytes ||
            end - begin != n_elements * static_cast<uint64_t>(weights::StDtypeBytes(ref.dtype))) {
          return bad();
        }
        ref.data = data + begin;
        ref.n_bytes = end - begin;
        return ref;
      });
}

}  // namespace

absl::StatusOr<std::string> TokenizerFingerprint(const tokenizer::Tokenizer& tokenizer) {
  const tokenizer::TokenizerSpec& spec = tokenizer.spec();
  std::string out(kTokenizerDomain.data(), kTokenizerDomain.size());
  PutU64(&out, spec.tokens.size());
  for (size_t i = 0; i < spec.tokens.size(); ++i) {
    PutString(&out, spec.tokens[i]);
    PutI32(&out, i < spec.token_types.size() ? static_cast<int32_t>(spec.token_types[i]) : 0);
  }
  PutU64(&out, spec.merges.size());
  for (const auto& [left, right] : spec.merges) {
    PutString(&out, left);
    PutString(&out, right);
  }
  PutString(&out, spec.pre_tokenizer);
  for (int32_t id : {spec.bos_id, spec.eos_id, spec.unk_id, spec.pad_id, spec.bpe_unk_id}) {
    PutI32(&out, id);
  }
  for (bool flag : {spec.add_bos, spec.add_eos, spec.ignore_merges}) out.push_back(flag ? 1 : 0);
  return blob::FingerprintBytes(out);
}

absl::StatusOr<ModelIdentity> ComputeModelIdentity(const model::Model& model,
                                                   std::string model_name) {
  ModelIdentity identity;
  identity.model_name = std::move(model_name);
  std::error_code ec;
  if (fs::is_directory(model.path(), ec)) {
    std::vector<std::string> paths;
    for (const char* name : {"config.json", "model.safetensors.index.json"}) {
      const std::string p = model.path() + "/" + name;
      if (fs::exists(p, ec)) paths.push_back(p);
    }
    std::vector<std::string> shards;
    for (fs::directory_iterator it(model.path(), ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().extension() == ".safetensors") shards.push_back(it->path().string());
    }
    if (ec) {
      return absl::InternalError(absl::StrCat("cannot list ", model.path(), ": ", ec.message()));
    }
    std::sort(shards.begin(), shards.end());
    paths.insert(paths.end(), shards.begin(), shards.end());
    CTXMEM_ASSIGN_OR_RETURN(identity.model_fingerprint, blob::FingerprintFiles(paths));
  } else {
    CTXMEM_ASSIGN_OR_RETURN(identity.model_fingerprint, blob::FingerprintFile(model.path()));
  }
  if (model.tokenizer() != nullptr) {
    CTXMEM_ASSIGN_OR_RETURN(identity.tokenizer_fingerprint,
                            TokenizerFingerprint(*model.tokenizer()));
  }
  return identity;
}

absl::StatusOr<weights::StDtype> ParseKvDtype(absl::string_view name) {
  if (name.empty() || name == "bf16") return StDtype::kBF16;
  if (name == "f16") return StDtype::kF16;
  if (name == "f32") return StDtype::kF32;
  return absl::InvalidArgumentError(
      absl::StrCat("kv_dtype '", name, "' is not known; valid: bf16, f16, f32"));
}

std::string KvDtypeName(weights::StDtype dtype) {
  switch (dtype) {
    case StDtype::kF16:
      return "f16";
    case StDtype::kF32:
      return "f32";
    case StDtype::kBF16:
      return "bf16";
    default:
      return std::string(weights::StDtypeName(dtype));
  }
}

absl::StatusOr<EncodedMemory> EncodeMemory(const Memory& memory, weights::StDtype kv_dtype,
                                           blob::BlobMetadata base) {
  if (kv_dtype != StDtype::kF32 && kv_dtype != StDtype::kF16 && kv_dtype != StDtype::kBF16) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv_dtype ", AsAbsl(weights::StDtypeName(kv_dtype)),
                     " cannot store a memory; valid: bf16, f16, f32"));
  }
  if (memory.layers.empty()) return absl::InvalidArgumentError("memory has no layers");
  CTXMEM_ASSIGN_OR_RETURN(const at::ScalarType type, TorchType(kv_dtype));
  EncodedMemory out;
  out.metadata = std::move(base);
  out.metadata.n_original_tokens = memory.n_tokens;
  out.metadata.n_sinks = memory.n_sinks;
  out.metadata.fused_entries = memory.fused;
  out.metadata.kv_dtype = kv_dtype;
  out.metadata.quantization = blob::BlobQuantization::kNone;
  out.metadata.n_kept.clear();
  const int64_t len = memory.len();
  for (size_t i = 0; i < memory.layers.size(); ++i) {
    const LayerMemory& layer = memory.layers[i];
    if (layer.len() != len || !layer.k.defined() || !layer.v.defined() || layer.k.dim() != 3 ||
        layer.v.dim() != 3 || layer.k.size(1) != len || layer.v.size(1) != len ||
        layer.src.size(0) != layer.k.size(0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("memory layer ", i, " must hold k, v [n_kv_heads, ", len,
                       ", head_dim] and src [n_kv_heads, ", len, "] like layer 0"));
    }
    out.metadata.n_kept.push_back(len);
  }
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("encode memory", [&] {
    out.storage.reserve(memory.layers.size() * 3);
    for (const LayerMemory& layer : memory.layers) {
      out.storage.push_back(layer.k.to(at::kCPU).to(type).contiguous());         // [n_kv, len, hd]
      out.storage.push_back(layer.v.to(at::kCPU).to(type).contiguous());         // [n_kv, len, hd]
      out.storage.push_back(layer.src.to(at::kCPU).to(at::kLong).contiguous());  // [n_kv, len]
    }
  }));
  for (size_t i = 0; i < memory.layers.size(); ++i) {
    const at::Tensor& k = out.storage[3 * i];
    const at::Tensor& v = out.storage[3 * i + 1];
    const at::Tensor& src = out.storage[3 * i + 2];
    const auto layer = static_cast<int64_t>(i);
    out.tensors.push_back({blob::KeyTensorName(layer), kv_dtype, k.sizes().vec(), k.data_ptr()});
    out.tensors.push_back({blob::ValueTensorName(layer), kv_dtype, v.sizes().vec(), v.data_ptr()});
    out.tensors.push_back(
        {blob::SrcTensorName(layer), StDtype::kI64, src.sizes().vec(), src.data_ptr()});
  }
  return out;
}

absl::StatusOr<Memory> DecodeMemory(const blob::MemoryBlob& blob, const model::Transformer& model) {
  const weights::SafetensorsFile& file = blob.file();
  TensorLookup lookup = [&file](const std::string& name) -> absl::StatusOr<TensorRef> {
    const weights::StTensorInfo* info = file.Find(name);
    if (info == nullptr) return absl::DataLossError(absl::StrCat("blob has no tensor ", name));
    return TensorRef{info->dtype, info->shape, file.TensorData(*info), info->n_bytes};
  };
  return Decode(lookup, blob.metadata(), model);
}

absl::StatusOr<Memory> DecodeMemory(absl::string_view verified_bytes,
                                    const blob::BlobMetadata& metadata,
                                    const model::Transformer& model) {
  CTXMEM_ASSIGN_OR_RETURN(TensorLookup lookup, TableOf(verified_bytes));
  return Decode(lookup, metadata, model);
}

}  // namespace ctxmem::compress

namespace ctxmem::compress {
namespace {

absl::StatusOr<StDtype> FloatStDtype(KvDtype dtype) {
  switch (dtype) {
    case KvDtype::kBF16:
      return StDtype::kBF16;
    case KvDtype::kF16:
      return StDtype::kF16;
    case KvDtype::kF32:
      return StDtype::kF32;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("kv_dtype ", std::string(KvDtypeLabel(dtype)), " is not a float type"));
  }
}

// Adds a CPU tensor to `out` under `name`, keeping it alive in out->storage.
void AddTensor(EncodedMemory* out, std::string name, StDtype dtype, at::Tensor t) {
  out->storage.push_back(std::move(t));
  const at::Tensor& kept = out->storage.back();
  out->tensors.push_back({std::move(name), dtype, kept.sizes().vec(), kept.data_ptr()});
}

absl::StatusOr<EncodedMemory> EncodeKivi(const Memory& memory, const KvFormat& format,
                                         blob::BlobMetadata base) {
  if (memory.layers.empty()) return absl::InvalidArgumentError("memory has no layers");
  EncodedMemory out;
  out.metadata = std::move(base);
  out.metadata.format_version = 2;
  out.metadata.n_original_tokens = memory.n_tokens;
  out.metadata.n_sinks = memory.n_sinks;
  out.metadata.fused_entries = memory.fused;
  out.metadata.kv_dtype = StDtype::kU8;
  out.metadata.quantization = format.dtype == KvDtype::kInt4 ? blob::BlobQuantization::kKiviInt4
                                                             : blob::BlobQuantization::kKiviInt8;
  out.metadata.kv_group_size = format.group_size;
  out.metadata.n_kept.clear();
  const int64_t len = memory.len();
  if (len == 0) return absl::InvalidArgumentError("a quantized memory needs at least one entry");
  out.storage.reserve(memory.layers.size() * 7);
  for (size_t i = 0; i < memory.layers.size(); ++i) {
    const LayerMemory& layer = memory.layers[i];
    const auto li = static_cast<int64_t>(i);
    if (layer.len() != len || !layer.k.defined() || !layer.v.defined() || layer.k.dim() != 3 ||
        layer.v.dim() != 3 || layer.k.size(1) != len || layer.v.size(1) != len ||
        layer.src.size(0) != layer.k.size(0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("memory layer ", i, " must hold k, v [n_kv_heads, ", len,
                       ", head_dim] and src [n_kv_heads, ", len, "] like layer 0"));
    }
    out.metadata.n_kept.push_back(len);
    CTXMEM_ASSIGN_OR_RETURN(QuantizedTensor qk,
                            KiviQuantize(layer.k, format, KiviGroupAxis::kTokens));
    CTXMEM_ASSIGN_OR_RETURN(QuantizedTensor qv,
                            KiviQuantize(layer.v, format, KiviGroupAxis::kChannels));
    at::Tensor src;
    CTXMEM_RETURN_IF_ERROR(model::TorchCall("encode src", [&] {
      src = layer.src.to(at::kCPU).to(at::kInt).contiguous();  // [n_kv_heads, len]
    }));
    AddTensor(&out, blob::KeyTensorName(li), StDtype::kU8, qk.codes);
    AddTensor(&out, blob::KeyScaleTensorName(li), StDtype::kF16, qk.scale);
    AddTensor(&out, blob::KeyZeroTensorName(li), StDtype::kF16, qk.zero);
    AddTensor(&out, blob::ValueTensorName(li), StDtype::kU8, qv.codes);
    AddTensor(&out, blob::ValueScaleTensorName(li), StDtype::kF16, qv.scale);
    AddTensor(&out, blob::ValueZeroTensorName(li), StDtype::kF16, qv.zero);
    AddTensor(&out, blob::SrcTensorName(li), StDtype::kI32, src);
  }
  return out;
}

// The append state's tensors and metadata. The hidden store is kept in `hidden_dtype`.
absl::Status AddAppendState(const Memory& memory, const AppendState& state, StDtype hidden_dtype,
                            EncodedMemory* out) {
  out->metadata.append_state = state.ToJson();
  CTXMEM_ASSIGN_OR_RETURN(const at::ScalarType hidden_type, TorchType(hidden_dtype));
  if (!state.hidden.empty() && state.hidden.size() != memory.layers.size()) {
    return absl::InvalidArgumentError(absl::StrCat("hidden store has ", state.hidden.size(),
                                                   " layers, the memory ", memory.layers.size()));
  }
  return model::TorchCall("encode append state", [&] {
    for (size_t i = 0; i < memory.layers.size(); ++i) {
      const auto li = static_cast<int64_t>(i);
      const LayerMemory& layer = memory.layers[i];
      if (state.has_rank && layer.len() > 0) {
        AddTensor(out, blob::RankTensorName(li), StDtype::kF32,
                  layer.rank.to(at::kCPU).to(at::kFloat).contiguous());  // [n_kv_heads, len]
      }
      if (state.hidden.empty() || state.hidden[i].len() == 0) continue;
      const LayerMemory& h = state.hidden[i];  // [n_kv_heads, hidden_len, *]
      AddTensor(out, blob::HiddenTensorName(li, "k"), hidden_dtype,
                h.k.to(at::kCPU).to(hidden_type).contiguous());
      AddTensor(out, blob::HiddenTensorName(li, "v"), hidden_dtype,
                h.v.to(at::kCPU).to(hidden_type).contiguous());
      AddTensor(out, blob::HiddenTensorName(li, "src"), StDtype::kI64,
                h.src.to(at::kCPU).to(at::kLong).contiguous());
      AddTensor(out, blob::HiddenTensorName(li, "rank"), StDtype::kF32,
                h.rank.to(at::kCPU).to(at::kFloat).contiguous());
    }
  });
}

}  // namespace

absl::StatusOr<KvFormat> BlobKvFormat(const blob::BlobMetadata& metadata) {
  KvFormat format;
  switch (metadata.quantization) {
    case blob::BlobQuantization::kKiviInt8:
    case blob::BlobQuantization::kKiviInt4:
      format.dtype = metadata.quantization == blob::BlobQuantization::kKiviInt4 ? KvDtype::kInt4
                                                                                : KvDtype::kInt8;
      format.group_size = metadata.kv_group_size;
      if (!format.Validate().ok()) {
        return absl::DataLossError(
            absl::StrCat("blob kv_group_size=", metadata.kv_group_size, " is out of range"));
      }
      return format;
    case blob::BlobQuantization::kNone:
      switch (metadata.kv_dtype) {
        case StDtype::kBF16:
          format.dtype = KvDtype::kBF16;
          return format;
        case StDtype::kF16:
          format.dtype = KvDtype::kF16;
          return format;
        case StDtype::kF32:
          format.dtype = KvDtype::kF32;
          return format;
        default:
          break;
      }
      break;
    case blob::BlobQuantization::kInt8PerChannel:
      break;
  }
  return absl::DataLossError(absl::StrCat(
      "blob kv_dtype ", AsAbsl(weights::StDtypeName(metadata.kv_dtype)), " with quantization ",
      AsAbsl(blob::BlobQuantizationName(metadata.quantization)), " is not a KvFormat"));
}

absl::StatusOr<EncodedMemory> EncodeMemory(const Memory& memory, const KvFormat& format,
                                           blob::BlobMetadata base, const AppendState* state) {
  CTXMEM_RETURN_IF_ERROR(format.Validate());
  EncodedMemory out;
  StDtype hidden_dtype = StDtype::kBF16;
  if (format.quantized()) {
    CTXMEM_ASSIGN_OR_RETURN(out, EncodeKivi(memory, format, std::move(base)));
  } else {
    CTXMEM_ASSIGN_OR_RETURN(hidden_dtype, FloatStDtype(format.dtype));
    CTXMEM_ASSIGN_OR_RETURN(out, EncodeMemory(memory, hidden_dtype, std::move(base)));
  }
  if (state != nullptr) CTXMEM_RETURN_IF_ERROR(AddAppendState(memory, *state, hidden_dtype, &out));
  return out;
}

absl::StatusOr<ResumableMemory> DecodeResumableMemory(absl::string_view verified_bytes,
                                                      const blob::BlobMetadata& metadata,
                                                      const model::Transformer& model) {
  if (metadata.append_state.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("memory ", metadata.memory_id,
                     " was sealed without an append state and cannot be continued"));
  }
  bool has_hidden = false;
  ResumableMemory out;
  CTXMEM_ASSIGN_OR_RETURN(out.state, AppendState::FromJson(metadata.append_state, &has_hidden));
  CTXMEM_ASSIGN_OR_RETURN(TensorLookup lookup, TableOf(verified_bytes));
  CTXMEM_ASSIGN_OR_RETURN(out.memory, Decode(lookup, metadata, model));
  const model::ModelConfig& c = model.config();
  const int64_t len = out.memory.len();
  const auto device = model.device();
  for (int64_t i = 0; i < c.n_layers && out.state.has_rank && len > 0; ++i) {
    CTXMEM_ASSIGN_OR_RETURN(
        TensorRef ref, Need(lookup, blob::RankTensorName(i), StDtype::kF32, {c.n_kv_heads, len}));
    CTXMEM_ASSIGN_OR_RETURN(at::Tensor rank, ToTorch(ref));
    CTXMEM_RETURN_IF_ERROR(
        model::TorchCall("decode rank", [&] { out.memory.layers[i].rank = rank.to(device); }));
  }
  if (!has_hidden) return out;
  out.state.hidden.resize(c.n_layers);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    absl::StatusOr<TensorRef> src_ref = lookup(blob::HiddenTensorName(i, "src"));
    if (!src_ref.ok()) continue;  // this layer's hidden store is empty
    if (src_ref->dtype != StDtype::kI64 || src_ref->shape.size() != 2 ||
        src_ref->shape[0] != c.n_kv_heads) {
      return absl::DataLossError(absl::StrCat("blob tensor ", blob::HiddenTensorName(i, "src"),
                                              " is ", ShapeString(src_ref->shape), ", expected [",
                                              c.n_kv_heads, ", n] I64"));
    }
    const int64_t n = src_ref->shape[1];
    CTXMEM_ASSIGN_OR_RETURN(TensorRef k_ref, lookup(blob::HiddenTensorName(i, "k")));
    CTXMEM_ASSIGN_OR_RETURN(k_ref, Need(lookup, blob::HiddenTensorName(i, "k"), k_ref.dtype,
                                        {c.n_kv_heads, n, c.head_dim}));
    CTXMEM_ASSIGN_OR_RETURN(TensorRef v_ref, Need(lookup, blob::HiddenTensorName(i, "v"),
                                                  k_ref.dtype, {c.n_kv_heads, n, c.head_dim}));
    CTXMEM_ASSIGN_OR_RETURN(TensorRef r_ref, Need(lookup, blob::HiddenTensorName(i, "rank"),
                                                  StDtype::kF32, {c.n_kv_heads, n}));
    CTXMEM_ASSIGN_OR_RETURN(at::Tensor k, ToTorch(k_ref));
    CTXMEM_ASSIGN_OR_RETURN(at::Tensor v, ToTorch(v_ref));
    CTXMEM_ASSIGN_OR_RETURN(at::Tensor src, ToTorch(*src_ref));
    CTXMEM_ASSIGN_OR_RETURN(at::Tensor rank, ToTorch(r_ref));
    CTXMEM_RETURN_IF_ERROR(model::TorchCall("decode hidden store", [&] {
      LayerMemory& h = out.state.hidden[i];
      h.k = k.to(device, model.dtype()).contiguous();
      h.v = v.to(device, model.dtype()).contiguous();
      h.src = src.to(device);
      h.rank = rank.to(device);
    }));
  }
  return out;
}

}  // namespace ctxmem::compress
