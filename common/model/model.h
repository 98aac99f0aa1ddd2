#pragma once
// A loaded language model: config, weights on a device, forward pass and tokenizer.
// Loads a GGUF file or a HF checkpoint folder (config.json + *.safetensors [+ tokenizer.json]).
// Thread-safety: const methods only; one Model serves concurrent forwards.

#include <c10/core/Device.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/model/model_config.h"
#include "common/model/packed_weights.h"
#include "common/model/transformer.h"
#include "common/tokenizer/tokenizer.h"

namespace ctxmem::model {

struct ModelOptions {
  std::string device = "cpu";  // "cpu" | "cuda" | "cuda:N"
  // "fp32" | "bf16" | "fp16": the weight matrices; activations fp32. "auto" = ResolveDtype.
  std::string dtype = "fp32";
  int n_threads = 0;  // intra-op threads for CPU; 0 = leave torch's default
  // Decode steps (one token at a time): "packed" runs them on the GGUF file's 4/8-bit blocks
  // (FastDecoder, llama family, CPU; int8 activations), "dense" on the dense weights through
  // Transformer::Forward, "auto" = packed where available (a GGUF llama-family model on the
  // CPU), else dense. Prefill and compression always use the dense weights. The default stays
  // dense until the integration suite has run on the packed path (docs/runtime.md).
  std::string decode = "dense";  // "auto" | "packed" | "dense"
};

// Parses "cpu" / "cuda" / "cuda:N". FailedPrecondition when CUDA is asked for and this build or
// machine has none; InvalidArgument for anything else.
absl::StatusOr<c10::Device> ParseDevice(const std::string& name);
// Parses "fp32" / "bf16" / "fp16" (InvalidArgument lists the valid names).
absl::StatusOr<c10::ScalarType> ParseDtype(const std::string& name);
// ParseDtype, plus "auto": bf16 where `device` multiplies bf16 matrices natively (CUDA; a CPU
// with AVX512_BF16, whose oneDNN GEMM ran 4.9x fp32 on the Xeon of issue 9), else fp32: on an
// AVX2-only CPU ATen's bf16 GEMM is a scalar-ish fallback, 5.8x slower than fp32 at 512
// tokens on a Zen 3 (docs/runtime.md "Defaults").
absl::StatusOr<c10::ScalarType> ResolveDtype(const std::string& name, c10::Device device);

class Model {
 public:
  // NotFound for a missing path; InvalidArgument naming file and tensor for anything malformed
  // or unsupported (see GgufFile, SafetensorsCheckpoint, ModelConfig::Validate).
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& path,
                                                     const ModelOptions& options = {});
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  ~Model();

  const ModelConfig& config() const { return transformer_->config(); }
  const Transformer& transformer() const { return *transformer_; }
  // nullptr for a checkpoint folder without tokenizer.json.
  const tokenizer::Tokenizer* tokenizer() const { return tokenizer_.get(); }
  const std::string& path() const { return path_; }
  // The quantized weights of the packed decode path; nullptr when decoding is dense.
  const PackedWeights* packed_weights() const { return packed_.get(); }

 private:
  Model() = default;
  std::string path_;
  std::unique_ptr<Transformer> transformer_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<PackedWeights> packed_;
};

}  // namespace ctxmem::model
