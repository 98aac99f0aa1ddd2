#pragma once
// Hyper-parameters of a decoder-only transformer, read from GGUF metadata or a HF config.json.
// Thread-safety: plain value type.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ctxmem::weights {
class GgufFile;
}

namespace ctxmem::model {

// Model families with a native forward. Names as HF `model_type` spells them.
enum class Arch { kLlama, kQwen2, kMistral, kGptNeox };

absl::StatusOr<Arch> ParseArch(std::string_view name);  // InvalidArgument lists the known names
std::string_view ArchName(Arch arch);

enum class RopeScaling { kNone, kLinear, kLlama3 };

struct ModelConfig {
  Arch arch = Arch::kLlama;
  int64_t n_layers = 0;
  int64_t hidden = 0;  // d_model
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;  // GQA: n_heads % n_kv_heads == 0
  int64_t head_dim = 0;
  int64_t ffn = 0;  // intermediate size
  int64_t n_vocab = 0;
  int64_t max_positions = 0;  // trained context window (tokens)
  double norm_eps = 1e-5;
  double rope_theta = 10000.0;
  int64_t rope_dim = 0;  // rotary dims per head (head_dim, or less for partial rotary)
  RopeScaling rope_scaling = RopeScaling::kNone;
  double rope_factor = 1.0;                    // linear / llama3
  double rope_low_freq_factor = 1.0;           // llama3
  double rope_high_freq_factor = 4.0;          // llama3
  int64_t rope_original_max_positions = 8192;  // llama3
  bool tied_embeddings = false;                // lm_head shares the token embedding
  bool parallel_residual = false;              // gpt_neox: x + attn(ln1 x) + mlp(ln2 x)
  bool qkv_bias = false;                       // qwen2, gpt_neox
  bool layer_norm = false;                     // LayerNorm with bias (gpt_neox) instead of RMSNorm
  int64_t sliding_window = 0;                  // mistral; 0 = none

  // InvalidArgument naming the field and value for anything inconsistent.
  absl::Status Validate() const;
};

// From GGUF `general.architecture` and `<arch>.*` keys (llama, qwen2, gptneox).
absl::StatusOr<ModelConfig> ModelConfigFromGguf(const weights::GgufFile& file);
// From a HF config.json (model_type llama, qwen2, mistral, gpt_neox).
absl::StatusOr<ModelConfig> ModelConfigFromHfJson(const std::string& config_json_path);

}  // namespace ctxmem::model
