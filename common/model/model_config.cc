#include "common/model/model_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "common/weights/gguf_file.h"

namespace ctxmem::model {
namespace {

struct ArchName {
  Arch arch;
  std::string_view name;
};
constexpr ArchName kArchNames[] = {
    {Arch::kLlama, "llama"},
    {Arch::kQwen2, "qwen2"},
    {Arch::kMistral, "mistral"},
    {Arch::kGptNeox, "gpt_neox"},
};

// Reads an optional numeric field; keeps `*out` when absent or null.
template <typename T>
absl::Status ReadNumber(const nlohmann::json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number() && !it->is_boolean()) {
    return absl::InvalidArgumentError(absl::StrCat("config.json: '", key, "' is not a number"));
  }
  *out = it->get<T>();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Arch> ParseArch(std::string_view name) {
  for (const auto& a : kArchNames) {
    if (a.name == name) return a.arch;
  }
  if (name == "gptneox") return Arch::kGptNeox;  // GGUF spelling
  return absl::InvalidArgumentError(absl::StrCat("unsupported model architecture '",
                                                 std::string(name),
                                                 "'; supported: llama, qwen2, mistral, gpt_neox"));
}

std::string_view ArchName(Arch arch) {
  for (const auto& a : kArchNames) {
    if (a.arch == arch) return a.name;
  }
  return "?";
}

absl::Status ModelConfig::Validate() const {
  auto bad = [](std::string msg) { return absl::InvalidArgumentError(std::move(msg)); };
  if (n_layers <= 0 || n_layers > 1024) return bad(absl::StrCat("n_layers=", n_layers));
  if (hidden <= 0) return bad(absl::StrCat("hidden=", hidden));
  if (n_heads <= 0 || n_kv_heads <= 0) {
    return bad(absl::StrCat("n_heads=", n_heads, " n_kv_heads=", n_kv_heads));
  }
  if (n_heads % n_kv_heads != 0) {
    return bad(absl::StrCat("n_heads=", n_heads, " is not divisible by n_kv_heads=", n_kv_heads));
  }
  if (head_dim <= 0 || head_dim % 2 != 0) return bad(absl::StrCat("head_dim=", head_dim));
  if (rope_dim <= 0 || rope_dim > head_dim || rope_dim % 2 != 0) {
    return bad(
        absl::StrCat("rope_dim=", rope_dim, " must be even and in (0, head_dim=", head_dim, "]"));
  }
  if (ffn <= 0) return bad(absl::StrCat("ffn=", ffn));
  if (n_vocab <= 0) return bad(absl::StrCat("n_vocab=", n_vocab));
  if (!(norm_eps > 0)) return bad(absl::StrCat("norm_eps=", norm_eps));
  if (!(rope_theta > 0)) return bad(absl::StrCat("rope_theta=", rope_theta));
  if (max_positions <= 0) return bad(absl::StrCat("max_positions=", max_positions));
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> ModelConfigFromGguf(const weights::GgufFile& file) {
  ModelConfig c;
  CTXMEM_ASSIGN_OR_RETURN(std::string arch, file.GetString("general.architecture"));
  CTXMEM_ASSIGN_OR_RETURN(c.arch, ParseArch(arch));
  const std::string p = arch + ".";
  auto get_int = [&](const char* key) { return file.GetInt(p + key); };
  CTXMEM_ASSIGN_OR_RETURN(c.n_layers, get_int("block_count"));
  CTXMEM_ASSIGN_OR_RETURN(c.hidden, get_int("embedding_length"));
  CTXMEM_ASSIGN_OR_RETURN(c.ffn, get_int("feed_forward_length"));
  CTXMEM_ASSIGN_OR_RETURN(c.n_heads, get_int("attention.head_count"));
  c.n_kv_heads = file.GetInt(p + "attention.head_count_kv").value_or(c.n_heads);
  c.max_positions = file.GetInt(p + "context_length").value_or(2048);
  if (c.n_heads <= 0) return absl::InvalidArgumentError("attention.head_count must be > 0");
  c.head_dim = file.GetInt(p + "attention.key_length").value_or(c.hidden / c.n_heads);
  c.rope_dim = file.GetInt(p + "rope.dimension_count").value_or(c.head_dim);
  c.rope_theta = file.GetFloat(p + "rope.freq_base").value_or(10000.0);
  if (c.arch == Arch::kGptNeox) {
    c.layer_norm = true;
    c.qkv_bias = true;
    c.parallel_residual = file.GetBool(p + "use_parallel_residual").value_or(true);
    c.norm_eps = file.GetFloat(p + "attention.layer_norm_epsilon").value_or(1e-5);
  } else {
    c.norm_eps = file.GetFloat(p + "attention.layer_norm_rms_epsilon").value_or(1e-5);
    c.qkv_bias = c.arch == Arch::kQwen2;
  }
  auto scaling = file.GetString(p + "rope.scaling.type");
  if (scaling.ok() && *scaling == "linear") {
    c.rope_scaling = RopeScaling::kLinear;
    c.rope_factor = file.GetFloat(p + "rope.scaling.factor").value_or(1.0);
  }
  // Vocabulary size: metadata when present, else the tokenizer's token list.
  auto vocab = file.GetInt(p + "vocab_size");
  if (vocab.ok()) {
    c.n_vocab = *vocab;
  } else {
    const auto* tokens = file.Find("tokenizer.ggml.tokens");
    if (tokens == nullptr) return absl::InvalidArgumentError("no vocab_size and no tokens");
    c.n_vocab = static_cast<int64_t>(std::get<weights::GgufArray>(tokens->value).size());
  }
  // Tied embeddings: GGUF omits output.weight when the head reuses token_embd.
  c.tied_embeddings = file.FindTensor("output.weight") == nullptr;
  CTXMEM_RETURN_IF_ERROR(WithContext(c.Validate(), file.path()));
  return c;
}

absl::StatusOr<ModelConfig> ModelConfigFromHfJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  }
  auto it = j.find("model_type");
  if (it == j.end() || !it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": missing model_type"));
  }
  ModelConfig c;
  CTXMEM_ASSIGN_OR_RETURN(c.arch, ParseArch(it->get<std::string>()));
  absl::Status st;
  auto num = [&](const char* key, auto* out) {
    if (st.ok()) st = ReadNumber(j, key, out);
  };
  num("num_hidden_layers", &c.n_layers);
  num("hidden_size", &c.hidden);
  num("num_attention_heads", &c.n_heads);
  c.n_kv_heads = c.n_heads;
  num("num_key_value_heads", &c.n_kv_heads);
  num("intermediate_size", &c.ffn);
  num("vocab_size", &c.n_vocab);
  num("max_position_embeddings", &c.max_positions);
  num("rope_theta", &c.rope_theta);
  CTXMEM_RETURN_IF_ERROR(WithContext(st, path));
  if (c.n_heads <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": num_attention_heads must be > 0"));
  }
  c.head_dim = c.hidden / c.n_heads;
  num("head_dim", &c.head_dim);
  c.rope_dim = c.head_dim;
  if (c.arch == Arch::kGptNeox) {
    c.layer_norm = true;
    c.qkv_bias = true;
    c.parallel_residual = true;
    num("use_parallel_residual", &c.parallel_residual);
    num("layer_norm_eps", &c.norm_eps);
    num("rotary_emb_base", &c.rope_theta);
    double pct = 1.0;
    num("rotary_pct", &pct);
    c.rope_dim = static_cast<int64_t>(c.head_dim * pct);
    c.tied_embeddings = false;
    num("tie_word_embeddings", &c.tied_embeddings);
  } else {
    num("rms_norm_eps", &c.norm_eps);
    c.qkv_bias = c.arch == Arch::kQwen2;
    num("attention_bias", &c.qkv_bias);
    c.tied_embeddings = c.arch == Arch::kQwen2;
    num("tie_word_embeddings", &c.tied_embeddings);
    if (c.arch == Arch::kMistral) num("sliding_window", &c.sliding_window);
  }
  // HF transformers >= 5 may nest rope settings in `rope_parameters`; older in `rope_scaling`.
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    auto rs = j.find(key);
    if (rs == j.end() || !rs->is_object()) continue;
    auto rnum = [&](const char* k, auto* out) {
      if (st.ok()) st = ReadNumber(*rs, k, out);
    };
    rnum("rope_theta", &c.rope_theta);
    std::string type = rs->value("rope_type", rs->value("type", std::string("default")));
    if (type == "linear") {
      c.rope_scaling = RopeScaling::kLinear;
    } else if (type == "llama3") {
      c.rope_scaling = RopeScaling::kLlama3;
    } else if (type != "default") {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": unsupported rope scaling type '", type, "'"));
    }
    rnum("factor", &c.rope_factor);
    rnum("low_freq_factor", &c.rope_low_freq_factor);
    rnum("high_freq_factor", &c.rope_high_freq_factor);
    rnum("original_max_position_embeddings", &c.rope_original_max_positions);
    if (c.arch == Arch::kGptNeox) {
      double pct = static_cast<double>(c.rope_dim) / c.head_dim;
      rnum("partial_rotary_factor", &pct);
      c.rope_dim = static_cast<int64_t>(c.head_dim * pct);
    }
    CTXMEM_RETURN_IF_ERROR(WithContext(st, path));
  }
  CTXMEM_RETURN_IF_ERROR(WithContext(st, path));
  CTXMEM_RETURN_IF_ERROR(WithContext(c.Validate(), path));
  return c;
}

}  // namespace ctxmem::model
