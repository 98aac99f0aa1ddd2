#pragma once
// Flags every `ctxmem` subcommand that loads a model shares (--model, --device, --dtype,
// --decode, --threads), and the one place that turns them into a loaded Model.
// Thread-safety: plain functions; call from the main thread.

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "common/model/model.h"
#include "common/model/serving_options.h"

namespace ctxmem::cli {

struct ModelFlags {
  std::string path;  // GGUF file or HF checkpoint folder; $CTXMEM_MODEL when not given
  std::string device = "cpu";
  std::string dtype = model::kServingDtype;    // fp32 | bf16 | fp16 (ModelOptions::dtype)
  std::string decode = model::kServingDecode;  // auto | packed | dense (ModelOptions::decode)
  int n_threads = 0;                           // 0 = torch's default
};

// Registers the flags on `cmd`; `flags` must outlive the parse.
void AddModelFlags(CLI::App* cmd, ModelFlags* flags);

// InvalidArgument when no model was named; otherwise whatever Model::Load returns.
absl::StatusOr<std::unique_ptr<model::Model>> LoadModel(const ModelFlags& flags);

// Reads a whole file. NotFound / DataLoss naming the path.
absl::StatusOr<std::string> ReadTextFile(const std::string& path);

// A loaded model and the token ids of a text file.
struct ModelAndText {
  std::unique_ptr<model::Model> model;
  std::vector<int32_t> ids;  // as transformers' tokenizer(text, add_special_tokens=False)
};
// Reads `text_path`, loads the model and tokenizes the text with the model's tokenizer.
// Errors as ReadTextFile and LoadModel; FailedPrecondition for a model without a tokenizer.
absl::StatusOr<ModelAndText> LoadModelAndText(const ModelFlags& flags,
                                              const std::string& text_path);

// Prints "ctxmem <command>: error: <message>" to stderr and returns the exit code 1.
int ReportError(const std::string& command, const absl::Status& status);

}  // namespace ctxmem::cli
