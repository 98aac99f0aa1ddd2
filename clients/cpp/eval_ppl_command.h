#pragma once
// `ctxmem eval-ppl`: perplexity of chunked compression over a grid of chunk sizes, memory
// sizes, pruners and memory types (the seed's eval_all_pruners, spec §10.1, §12.14), with a
// no_compress reference row; progress bar on stderr; writes DIR/<name>.json and .md after every
// setting (pending settings marked), and resumes: a rerun with the same --out/--name reuses the
// settings already in DIR/<name>.json (same text, model, dtype and eval-len; --restart ignores
// it). The settings run in list order, so `--chunk 512,1024 --memory 256,128,512` does C=512,
// M=256 first.

#include <cstdint>
#include <string>

#include "CLI/CLI.hpp"
#include "clients/cpp/eval_flags.h"
#include "clients/cpp/model_flags.h"

namespace ctxmem::cli {

struct EvalPplArgs {
  ModelFlags model;
  CompressionFlags compression;
  std::string text_path;
  int64_t eval_len = 2048;
  std::string chunk_sizes = "512";
  std::string memory_sizes = "256";
  std::string pruners = "all";
  std::string memory_types = "FM,IM,IMDC";
  std::string out_dir;
  std::string name = "eval_ppl";   // output files DIR/<name>.{json,md,png}
  bool restart = false;            // ignore an existing DIR/<name>.json instead of resuming it
  std::string python = "python3";  // $CTXMEM_PYTHON when set; with matplotlib, for the PNG
  bool no_plot = false;
  bool no_kl = false;  // skip KL(no_compress || row) (saves eval_len x n_vocab floats)
};

// Adds the `eval-ppl` subcommand to `app`; `args` must outlive the parse.
CLI::App* AddEvalPplCommand(CLI::App* app, EvalPplArgs* args);

// Runs it; returns the process exit code (0, or 1 after printing the error to stderr).
int RunEvalPpl(const EvalPplArgs& args);

}  // namespace ctxmem::cli
