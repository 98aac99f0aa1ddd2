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

absl::StatusOr<Memory> Decode(const TensorLookup& lookup, const blob::BlobMetadata& m,
                              const model::Transformer& model) {
  const model::ModelConfig& c = model.config();
  if (m.n_layers() != c.n_layers) {
    return absl::FailedPreconditionError(absl::StrCat("memory has ", m.n_layers(),
                                                      " layers, the model has ", c.n_layers,
                                                      " (the blob was made with another model)"));
  }
  const bool int8 = m.quantization == blob::BlobQuantization::kInt8PerChannel;
  CTXMEM_ASSIGN_OR_RETURN(PositionMode position_mode, BlobPositionMode(m));
  Memory memory;
  memory.n_sinks = m.n_sinks;
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
  for (int64_t i = 0; i < m.n_layers(); ++i) {
    const std::string k_name = blob::KeyTensorName(i);
    CTXMEM_ASSIGN_OR_RETURN(TensorRef k_ref, lookup(k_name));
    // The model's shape is checked first: a different model is FailedPrecondition, not loss.
    if (k_ref.shape.size() != 3 || k_ref.shape[0] != c.n_kv_heads || k_ref.shape[2] != c.head_dim) {
      return absl::FailedPreconditionError(
          absl::StrCat("memory layer ", i, " keys are ", ShapeString(k_ref.shape),
                       ", the model needs [", c.n_kv_heads, " kv heads, ", len, ", ", c.head_dim,
                       " head_dim] (the blob was made with another model)"));
    }
    const std::vector<int64_t> kv_shape = {c.n_kv_heads, len, c.head_dim};
    CTXMEM_ASSIGN_OR_RETURN(k_ref, Need(lookup, k_name, m.kv_dtype, kv_shape));
    CTXMEM_ASSIGN_OR_RETURN(TensorRef v_ref,
                            Need(lookup, blob::ValueTensorName(i), m.kv_dtype, kv_shape));
    CTXMEM_ASSIGN_OR_RETURN(TensorRef src_ref, lookup(blob::SrcTensorName(i)));
    if (src_ref.dtype != StDtype::kI64 || src_ref.shape.empty() || src_ref.shape.back() != len ||
        !(src_ref.shape.size() == 1 ||
          (src_ref.shape.size() == 2 && src_ref.shape[0] == c.n_kv_heads))) {
      return absl::DataLossError(absl::StrCat("blob tensor ", blob::SrcTensorName(i), " is ",
                                              ShapeString(src_ref.shape), ", expected [",
                                              c.n_kv_heads, ", ", len, "] I64"));
    }
    CTXMEM_ASSIGN_OR_RETURN(at::Tensor k, ToTorch(k_ref));      // [n_kv_heads, len, head_dim]
    CTXMEM_ASSIGN_OR_RETURN(at::Tensor v, ToTorch(v_ref));      // [n_kv_heads, len, head_dim]
    CTXMEM_ASSIGN_OR_RETURN(at::Tensor src, ToTorch(src_ref));  // [n_kv_heads, len] or [len]
    at::Tensor k_scale, v_scale;                                // [n_kv_heads, 1, head_dim]
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
      if (src.dim() == 1) src = src.unsqueeze(0).expand({c.n_kv_heads, len}).contiguous();
      src_ok = src.min().item<int64_t>() >= 0 &&
               (m.n_original_tokens == 0 || src.max().item<int64_t>() < m.n_original_tokens);
      layer.k = k.to(device, model_type).contiguous();
      layer.v = v.to(device, model_type).contiguous();
      layer.src = src.to(device);
      layer.rank = at::zeros({c.n_kv_heads, len}, at::TensorOptions().dtype(at::kFloat))
                       .to(device);  // [n_kv_heads, len]; ranks are not stored
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
