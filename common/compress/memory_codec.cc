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
#include "common/compress/blob_tensor_table.h"
#include "common/compress/compression_config.h"
#include "common/compress/kivi_blob_codec.h"
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

// A src tensor [n_kv, len] or [len], I64 (or I32 in version 2), as int64 [n_kv, len].
absl::StatusOr<at::Tensor> DecodeSrc(const BlobTensorTable& lookup, const std::string& name,
                                     int64_t n_kv, int64_t len) {
  CTXMEM_ASSIGN_OR_RETURN(BlobTensorRef ref, lookup(name));
  if ((ref.dtype != StDtype::kI64 && ref.dtype != StDtype::kI32) || ref.shape.empty() ||
      ref.shape.back() != len ||
      !(ref.shape.size() == 1 || (ref.shape.size() == 2 && ref.shape[0] == n_kv))) {
    return absl::DataLossError(absl::StrCat("blob tensor ", name, " is ", ShapeString(ref.shape),
                                            ", expected [", n_kv, ", ", len, "] I64 or I32"));
  }
  CTXMEM_ASSIGN_OR_RETURN(at::Tensor src, CopyToTorch(ref));
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("decode src", [&] {
    src = src.to(at::kLong);
    if (src.dim() == 1) src = src.unsqueeze(0).expand({n_kv, len}).contiguous();
  }));
  return src;
}

absl::StatusOr<Memory> Decode(const BlobTensorTable& lookup, const blob::BlobMetadata& m,
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
    CTXMEM_ASSIGN_OR_RETURN(BlobTensorRef k_ref, lookup(k_name));
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
          k,
          DecodeKiviTensor(lookup, k_name, blob::KeyScaleTensorName(i), blob::KeyZeroTensorName(i),
                           format, KiviGroupAxis::kTokens, c.n_kv_heads, len, c.head_dim));
      CTXMEM_ASSIGN_OR_RETURN(
          v, DecodeKiviTensor(lookup, blob::ValueTensorName(i), blob::ValueScaleTensorName(i),
                              blob::ValueZeroTensorName(i), format, KiviGroupAxis::kChannels,
                              c.n_kv_heads, len, c.head_dim));
    } else {
      const std::vector<int64_t> kv_shape = {c.n_kv_heads, len, c.head_dim};
      CTXMEM_ASSIGN_OR_RETURN(k_ref, NeedTensor(lookup, k_name, m.kv_dtype, kv_shape));
      CTXMEM_ASSIGN_OR_RETURN(BlobTensorRef v_ref,
                              NeedTensor(lookup, blob::ValueTensorName(i), m.kv_dtype, kv_shape));
      CTXMEM_ASSIGN_OR_RETURN(k, CopyToTorch(k_ref));
      CTXMEM_ASSIGN_OR_RETURN(v, CopyToTorch(v_ref));
    }
    at::Tensor k_scale, v_scale;  // [n_kv_heads, 1, head_dim]
    if (int8) {
      const std::vector<int64_t> scale_shape = {c.n_kv_heads, 1, c.head_dim};
      CTXMEM_ASSIGN_OR_RETURN(BlobTensorRef ks, NeedTensor(lookup, blob::KeyScaleTensorName(i),
                                                           StDtype::kF32, scale_shape));
      CTXMEM_ASSIGN_OR_RETURN(BlobTensorRef vs, NeedTensor(lookup, blob::ValueScaleTensorName(i),
                                                           StDtype::kF32, scale_shape));
      CTXMEM_ASSIGN_OR_RETURN(k_scale, CopyToTorch(ks));
      CTXMEM_ASSIGN_OR_RETURN(v_scale, CopyToTorch(vs));
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
  CTXMEM_ASSIGN_OR_RETURN(const at::ScalarType type, TorchTypeOf(kv_dtype));
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
  return Decode(TableOfFile(blob.file()), blob.metadata(), model);
}

absl::StatusOr<Memory> DecodeMemory(absl::string_view verified_bytes,
                                    const blob::BlobMetadata& metadata,
                                    const model::Transformer& model) {
  CTXMEM_ASSIGN_OR_RETURN(BlobTensorTable lookup, TableOfBytes(verified_bytes));
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

// The append state's tensors and metadata. The hidden store is kept in `hidden_dtype`.
absl::Status AddAppendState(const Memory& memory, const AppendState& state, StDtype hidden_dtype,
                            EncodedMemory* out) {
  out->metadata.append_state = state.ToJson();
  CTXMEM_ASSIGN_OR_RETURN(const at::ScalarType hidden_type, TorchTypeOf(hidden_dtype));
  if (!state.hidden.empty() && state.hidden.size() != memory.layers.size()) {
    return absl::InvalidArgumentError(absl::StrCat("hidden store has ", state.hidden.size(),
                                                   " layers, the memory ", memory.layers.size()));
  }
  return model::TorchCall("encode append state", [&] {
    for (size_t i = 0; i < memory.layers.size(); ++i) {
      const auto li = static_cast<int64_t>(i);
      const LayerMemory& layer = memory.layers[i];
      if (state.has_rank && layer.len() > 0) {
        out->Add(blob::RankTensorName(li), StDtype::kF32,
                 layer.rank.to(at::kCPU).to(at::kFloat).contiguous());  // [n_kv_heads, len]
      }
      if (state.hidden.empty() || state.hidden[i].len() == 0) continue;
      const LayerMemory& h = state.hidden[i];  // [n_kv_heads, hidden_len, *]
      out->Add(blob::HiddenTensorName(li, "k"), hidden_dtype,
               h.k.to(at::kCPU).to(hidden_type).contiguous());
      out->Add(blob::HiddenTensorName(li, "v"), hidden_dtype,
               h.v.to(at::kCPU).to(hidden_type).contiguous());
      out->Add(blob::HiddenTensorName(li, "src"), StDtype::kI64,
               h.src.to(at::kCPU).to(at::kLong).contiguous());
      out->Add(blob::HiddenTensorName(li, "rank"), StDtype::kF32,
               h.rank.to(at::kCPU).to(at::kFloat).contiguous());
    }
  });
}

}  // namespace

void EncodedMemory::Add(std::string name, StDtype dtype, at::Tensor t) {
  storage.push_back(std::move(t));
  const at::Tensor& kept = storage.back();
  tensors.push_back({std::move(name), dtype, kept.sizes().vec(), kept.data_ptr()});
}

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
    CTXMEM_ASSIGN_OR_RETURN(out, EncodeKiviMemory(memory, format, std::move(base)));
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
  CTXMEM_ASSIGN_OR_RETURN(BlobTensorTable lookup, TableOfBytes(verified_bytes));
  CTXMEM_ASSIGN_OR_RETURN(out.memory, Decode(lookup, metadata, model));
  const model::ModelConfig& c = model.config();
  const int64_t len = out.memory.len();
  const auto device = model.device();
  for (int64_t i = 0; i < c.n_layers && out.state.has_rank && len > 0; ++i) {
    CTXMEM_ASSIGN_OR_RETURN(BlobTensorRef ref, NeedTensor(lookup, blob::RankTensorName(i),
                                                          StDtype::kF32, {c.n_kv_heads, len}));
    CTXMEM_ASSIGN_OR_RETURN(at::Tensor rank, CopyToTorch(ref));
    CTXMEM_RETURN_IF_ERROR(
        model::TorchCall("decode rank", [&] { out.memory.layers[i].rank = rank.to(device); }));
  }
  if (!has_hidden) return out;
  out.state.hidden.resize(c.n_layers);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    absl::StatusOr<BlobTensorRef> src_ref = lookup(blob::HiddenTensorName(i, "src"));
    if (!src_ref.ok()) continue;  // this layer's hidden store is empty
    if (src_ref->dtype != StDtype::kI64 || src_ref->shape.size() != 2 ||
        src_ref->shape[0] != c.n_kv_heads) {
      return absl::DataLossError(absl::StrCat("blob tensor ", blob::HiddenTensorName(i, "src"),
                                              " is ", ShapeString(src_ref->shape), ", expected [",
                                              c.n_kv_heads, ", n] I64"));
    }
    const int64_t n = src_ref->shape[1];
    CTXMEM_ASSIGN_OR_RETURN(BlobTensorRef k_ref, lookup(blob::HiddenTensorName(i, "k")));
    CTXMEM_ASSIGN_OR_RETURN(k_ref, NeedTensor(lookup, blob::HiddenTensorName(i, "k"), k_ref.dtype,
                                              {c.n_kv_heads, n, c.head_dim}));
    CTXMEM_ASSIGN_OR_RETURN(BlobTensorRef v_ref,
                            NeedTensor(lookup, blob::HiddenTensorName(i, "v"), k_ref.dtype,
                                       {c.n_kv_heads, n, c.head_dim}));
    CTXMEM_ASSIGN_OR_RETURN(
        BlobTensorRef r_ref,
        NeedTensor(lookup, blob::HiddenTensorName(i, "rank"), StDtype::kF32, {c.n_kv_heads, n}));
    CTXMEM_ASSIGN_OR_RETURN(at::Tensor k, CopyToTorch(k_ref));
    CTXMEM_ASSIGN_OR_RETURN(at::Tensor v, CopyToTorch(v_ref));
    CTXMEM_ASSIGN_OR_RETURN(at::Tensor src, CopyToTorch(*src_ref));
    CTXMEM_ASSIGN_OR_RETURN(at::Tensor rank, CopyToTorch(r_ref));
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
