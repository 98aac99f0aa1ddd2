#include "clients/cpp/model_flags.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace ctxmem::cli {

void AddModelFlags(CLI::App* cmd, ModelFlags* flags) {
  cmd->add_option("--model", flags->path, "GGUF file or HF checkpoint folder")
      ->envname("CTXMEM_MODEL");
  cmd->add_option("--device", flags->device, "cpu | cuda | cuda:N")->capture_default_str();
  cmd->add_option("--dtype", flags->dtype,
                  "auto | fp32 | bf16 | fp16: storage of the weight matrices (activations stay "
                  "fp32; fp32 is the reference; auto: bf16 on CUDA and on CPUs with "
                  "AVX512_BF16, else fp32)")
      ->capture_default_str();
  cmd->add_option("--decode", flags->decode,
                  "auto | packed | dense: decode steps on the GGUF's quantized blocks (auto: "
                  "where the model has them) or dense (the reference)")
      ->capture_default_str();
  cmd->add_option("--threads", flags->n_threads, "CPU threads (0 = torch's default)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

absl::StatusOr<std::unique_ptr<model::Model>> LoadModel(const ModelFlags& flags) {
  if (flags.path.empty()) {
    return absl::InvalidArgumentError("no model: pass --model PATH or set CTXMEM_MODEL");
  }
  model::ModelOptions options;
  options.device = flags.device;
  options.dtype = flags.dtype;
  options.decode = flags.decode;
  options.n_threads = flags.n_threads;
  return model::Model::Load(flags.path, options);
}

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open text file: ", path));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading text file: ", path));
  return buffer.str();
}

absl::StatusOr<ModelAndText> LoadModelAndText(const ModelFlags& flags,
                                              const std::string& text_path) {
  CTXMEM_ASSIGN_OR_RETURN(std::string text, ReadTextFile(text_path));
  ModelAndText out;
  CTXMEM_ASSIGN_OR_RETURN(out.model, LoadModel(flags));
  if (out.model->tokenizer() == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(flags.path, " has no tokenizer (tokenizer.json)"));
  }
  CTXMEM_ASSIGN_OR_RETURN(out.ids, out.model->tokenizer()->Encode(text));
  return out;
}

int ReportError(const std::string& command, const absl::Status& status) {
  std::fflush(stdout);
  std::fprintf(stderr, "ctxmem %s: error: %s\n", command.c_str(),
               std::string(status.message()).c_str());
  return 1;
}

}  // namespace ctxmem::cli
