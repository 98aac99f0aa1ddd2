#include "common/model/model.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/model/cpu_features.h"
#include "common/model/heap_tuning.h"
#include "common/model/torch_call.h"
#include "common/status.h"
#include "common/tokenizer/tokenizer_spec.h"
#include "common/weights/gguf_file.h"
#include "common/weights/safetensors_file.h"

namespace ctxmem::model {

absl::StatusOr<c10::Device> ParseDevice(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name == "cuda" || absl::StartsWith(name, "cuda:")) {
    int index = 0;
    if (name.size() > 5 && !absl::SimpleAtoi(name.substr(5), &index)) {
      return absl::InvalidArgumentError(absl::StrCat("bad device '", name, "'"));
    }
    if (!at::hasCUDA()) {
      return absl::FailedPreconditionError(
          absl::StrCat("device '", name,
                       "' requested but CUDA is not available (build with -DCTXMEM_CUDA=ON "
                       "on a machine with a GPU)"));
    }
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown device '", name, "'; valid: cpu, cuda, cuda:N"));
}

absl::StatusOr<c10::ScalarType> ParseDtype(const std::string& name) {
  if (name == "fp32" || name == "float32") return c10::kFloat;
  if (name == "bf16" || name == "bfloat16") return c10::kBFloat16;
  if (name == "fp16" || name == "float16") return c10::kHalf;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype '", name, "'; valid: fp32, bf16, fp16"));
}

absl::StatusOr<c10::ScalarType> ResolveDtype(const std::string& name, c10::Device device) {
  if (name != "auto") {
    absl::StatusOr<c10::ScalarType> d = ParseDtype(name);
    if (!d.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown dtype '", name, "'; valid: auto, fp32, bf16, fp16"));
    }
    return d;
  }
  if (device.is_cuda()) return c10::kBFloat16;
  return DetectCpuFeatures().avx512bf16 ? c10::kBFloat16 : c10::kFloat;
}

Model::~Model() = default;

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& path,
                                                   const ModelOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("model path does not exist: ", path));
  }
  TuneHeapForTensors();  // heap_tuning.h: activations' buffers stay mapped between forwards
  WeightLoadOptions wopts;
  CTXMEM_ASSIGN_OR_RETURN(wopts.device, ParseDevice(options.device));
  CTXMEM_ASSIGN_OR_RETURN(wopts.dtype, ResolveDtype(options.dtype, wopts.device));
  if (options.n_threads > 0) at::set_num_threads(options.n_threads);
  if (options.decode != "auto" && options.decode != "packed" && options.decode != "dense") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown decode mode '", options.decode, "'; valid: auto, packed, dense"));
  }

  std::unique_ptr<Model> m(new Model());
  m->path_ = path;
  ModelConfig config;
  ModelWeights weights;
  if (fs::is_directory(path, ec)) {
    if (options.decode == "packed") {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": decode=packed needs a GGUF file (a checkpoint folder decodes dense)"));
    }
    const std::string dir = path;
    CTXMEM_ASSIGN_OR_RETURN(config,
                            ModelConfigFromHfJson((fs::path(dir) / "config.json").string()));
    CTXMEM_ASSIGN_OR_RETURN(auto ckpt, weights::SafetensorsCheckpoint::Open(dir));
    CTXMEM_ASSIGN_OR_RETURN(weights, LoadWeightsFromCheckpoint(*ckpt, config, wopts));
    const auto tok_json = fs::path(dir) / "tokenizer.json";
    if (fs::exists(tok_json, ec)) {
      CTXMEM_ASSIGN_OR_RETURN(auto spec, tokenizer::TokenizerSpecFromJson(tok_json.string()));
      CTXMEM_ASSIGN_OR_RETURN(m->tokenizer_, tokenizer::Tokenizer::Create(std::move(spec)));
    }
  } else {
    CTXMEM_ASSIGN_OR_RETURN(auto file, weights::GgufFile::Open(path));
    CTXMEM_ASSIGN_OR_RETURN(config, ModelConfigFromGguf(*file));
    CTXMEM_ASSIGN_OR_RETURN(weights, LoadWeightsFromGguf(*file, config, wopts));
    const bool packable = PackedWeights::Supports(config) && wopts.device.is_cpu();
    if (options.decode == "packed" && !packable) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": decode=packed needs a llama-family model on the CPU (arch ",
                       AsAbsl(ArchName(config.arch)), ", device ", options.device, ")"));
    }
    if (options.decode != "dense" && packable) {
      CTXMEM_ASSIGN_OR_RETURN(m->packed_, PackedWeights::FromGguf(*file, config));
    }
    CTXMEM_ASSIGN_OR_RETURN(auto spec, tokenizer::TokenizerSpecFromGguf(*file));
    CTXMEM_ASSIGN_OR_RETURN(m->tokenizer_, tokenizer::Tokenizer::Create(std::move(spec)));
  }
  if (m->tokenizer_ != nullptr && m->tokenizer_->n_vocab() > config.n_vocab) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": tokenizer has ", m->tokenizer_->n_vocab(),
                     " tokens but the model's vocab is ", config.n_vocab));
  }
  CTXMEM_RETURN_IF_ERROR(TorchCall("creating transformer", [&] {
    m->transformer_ =
        std::make_unique<Transformer>(std::move(config), std::move(weights), wopts.device);
  }));
  return m;
}

}  // namespace ctxmem::model
