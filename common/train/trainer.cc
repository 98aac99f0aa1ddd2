#include "common/train/trainer.h"

#include <ATen/ATen.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/blob/atomic_file.h"
#include "common/blob/sha256.h"
#include "common/compress/compression_config.h"
#include "common/eval/ppl_sweep.h"
#include "common/learned/perceiver_weights.h"
#include "common/model/torch_call.h"
#include "common/model/transformer.h"
#include "common/status.h"
#include "common/train/lr_schedule.h"
#include "common/train/train_method.h"

namespace ctxmem::train {
namespace {

namespace fs = std::filesystem;

// Seeds of the two window streams (validation windows are fixed, index 0..val_windows-1).
constexpr uint64_t kValidationSeed = 0x76616c6964ull;  // "valid"

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status CheckOptions(const TrainOptions& o) {
  auto bad = [](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  CTXMEM_RETURN_IF_ERROR(CheckTrainMethod(o.method));
  if (o.out_dir.empty()) return bad("--out is required");
  if (o.steps < 1) return bad("--steps=", o.steps, " must be >= 1");
  if (o.batch < 1 || o.accum < 1) return bad("--batch and --accum must be >= 1");
  if (o.n_chunks < 2) return bad("--chunks-per-window=", o.n_chunks, " must be >= 2");
  if (o.val_windows < 0) return bad("--val-windows must be >= 0");
  if (!(o.weight_decay >= 0)) return bad("--weight-decay must be >= 0");
  return absl::OkStatus();
}

double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

// Held-out PPL of FM compression with `config` over the validation windows (every chunk's
// logits scored, as eval-ppl): exp(mean NLL over all scored tokens).
absl::StatusOr<double> HeldOutPpl(const model::Transformer& model, const TextWindows& val,
                                  int64_t n_windows, const compress::CompressionConfig& config) {
  double nll = 0;
  int64_t n = 0;
  for (int64_t i = 0; i < n_windows; ++i) {
    std::vector<int32_t> w = val.Window(kValidationSeed, i);
    CTXMEM_ASSIGN_OR_RETURN(
        eval::PplRow row,
        eval::EvaluateCompressedPerplexity(model, w, static_cast<int64_t>(w.size()), config));
    nll += row.nll * static_cast<double>(row.n_scored);
    n += row.n_scored;
  }
  return std::exp(nll / static_cast<double>(std::max<int64_t>(1, n)));
}

compress::CompressionConfig FmConfig(const TrainOptions& o, const std::string& pruner) {
  compress::CompressionConfig c;
  c.pruner = pruner;
  c.memory_type = compress::MemoryType::kFm;
  c.chunk_size = o.loss.chunk_size;
  c.memory_size = o.loss.memory_size;
  c.n_sink_tokens = o.loss.n_sinks;
  return c;
}

struct Checkpoint {
  int64_t step = 0;
  int64_t windows = 0;  // training windows consumed
  int64_t tokens = 0;
  nlohmann::json curves;
};

absl::Status SaveCheckpoint(const std::string& out_dir, const TrainMethod& method,
                            torch::optim::AdamW& optimizer, const Checkpoint& ck,
                            const TrainOptions& o) {
  const std::string dir = out_dir + "/checkpoint";
  const std::string tmp = out_dir + "/checkpoint.tmp";
  const std::string old = out_dir + "/checkpoint.old";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("creating ", tmp, ": ", ec.message()));
  CTXMEM_RETURN_IF_ERROR(method.Save(tmp + "/weights.safetensors", {}));
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("saving the optimizer",
                                          [&] { torch::save(optimizer, tmp + "/optimizer.pt"); }));
  nlohmann::json state;
  state["step"] = ck.step;
  state["windows"] = ck.windows;
  state["tokens"] = ck.tokens;
  state["curves"] = ck.curves;
  state["seed"] = o.seed;
  state["objective"] = method.objective();
  CTXMEM_RETURN_IF_ERROR(blob::WriteFileAtomically(tmp + "/state.json", state.dump(1) + "\n"));
  CTXMEM_RETURN_IF_ERROR(blob::SyncDirectory(tmp));
  // checkpoint -> checkpoint.old, tmp -> checkpoint, drop old: at every instant one complete
  // checkpoint exists under one of the two names (LoadCheckpoint looks at both).
  fs::remove_all(old, ec);
  if (fs::exists(dir)) {
    fs::rename(dir, old, ec);
    if (ec) return absl::InternalError(absl::StrCat("renaming ", dir, ": ", ec.message()));
  }
  fs::rename(tmp, dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("renaming ", tmp, ": ", ec.message()));
  CTXMEM_RETURN_IF_ERROR(blob::SyncDirectory(out_dir));
  fs::remove_all(old, ec);
  return absl::OkStatus();
}

// The last complete checkpoint of out_dir, or NotFound.
absl::StatusOr<std::string> CheckpointDir(const std::string& out_dir) {
  for (const char* name : {"/checkpoint", "/checkpoint.old"}) {
    const std::string d = out_dir + name;
    if (fs::exists(d + "/state.json") && fs::exists(d + "/weights.safetensors") &&
        fs::exists(d + "/optimizer.pt")) {
      return d;
    }
  }
  return absl::NotFoundError(absl::StrCat("no checkpoint in ", out_dir));
}

}  // namespace

absl::StatusOr<TrainResult> Train(const model::Transformer& model, const TextWindows& train,
                                  const TextWindows* validation, const TrainOptions& options,
                                  const std::function<void(const TrainProgress&)>& progress) {
  CTXMEM_RETURN_IF_ERROR(CheckOptions(options));
  const int64_t window = options.n_chunks * options.loss.chunk_size;
  if (train.window_len() != window ||
      (validation != nullptr && validation->window_len() != window)) {
    return absl::InvalidArgumentError(
        absl::StrCat("data windows of ", train.window_len(), " tokens; the options need ", window));
  }
  CTXMEM_ASSIGN_OR_RETURN(
      LrSchedule schedule,
      LrSchedule::Create(options.lr, options.warmup, options.steps, options.min_lr_ratio));
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("creating ", options.out_dir, ": ", ec.message()));

  // The module: seeded init, a given file, or the checkpoint.
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("seed", [&] { torch::manual_seed(options.seed); }));
  std::unique_ptr<TrainMethod> method;
  Checkpoint ck;
  std::string resume_dir;
  if (options.resume) {
    absl::StatusOr<std::string> d = CheckpointDir(options.out_dir);
    if (d.ok()) resume_dir = *d;
  }
  const std::string init =
      !resume_dir.empty() ? resume_dir + "/weights.safetensors" : options.init_weights;
  CTXMEM_ASSIGN_OR_RETURN(method, MakeTrainMethod(options, model, init));
  torch::nn::Module* module = &method->module();
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("to device", [&] { module->to(model.device()); }));
  std::unique_ptr<torch::optim::AdamW> optimizer;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("optimizer", [&] {
    optimizer = std::make_unique<torch::optim::AdamW>(
        module->parameters(),
        torch::optim::AdamWOptions(options.lr).weight_decay(options.weight_decay));
  }));
  if (!resume_dir.empty()) {
    CTXMEM_RETURN_IF_ERROR(model::TorchCall(
        "loading the optimizer", [&] { torch::load(*optimizer, resume_dir + "/optimizer.pt"); }));
    CTXMEM_ASSIGN_OR_RETURN(std::string text, ReadFile(resume_dir + "/state.json"));
    nlohmann::json state = nlohmann::json::parse(text, nullptr, false);
    if (state.is_discarded() || !state.contains("step")) {
      return absl::InvalidArgumentError(absl::StrCat(resume_dir, "/state.json is malformed"));
    }
    ck.step = state["step"].get<int64_t>();
    ck.windows = state["windows"].get<int64_t>();
    ck.tokens = state["tokens"].get<int64_t>();
    ck.curves = state["curves"];
  }
  if (ck.curves.is_null()) {
    ck.curves = {{"train", nlohmann::json::array()}, {"validation", nlohmann::json::array()}};
  }
  const std::string eval_weights = options.out_dir + "/eval_weights.safetensors";

  // Validation loss and held-out PPL (and, once, the training-free references).
  auto evaluate = [&](int64_t step, TrainProgress* p) -> absl::Status {
    if (validation == nullptr || options.val_windows == 0) return absl::OkStatus();
    std::vector<double> losses, lms, auxes;
    for (int64_t i = 0; i < options.val_windows; ++i) {
      std::vector<int32_t> w = validation->Window(kValidationSeed, i);
      CTXMEM_ASSIGN_OR_RETURN(WindowLoss l, method->Loss(model, w, 0));
      losses.push_back(l.total);
      lms.push_back(l.lm);
      auxes.push_back(l.aux);
    }
    nlohmann::json row = {{"step", step},
                          {"tokens", ck.tokens},
                          {"loss", Mean(losses)},
                          {"lm", Mean(lms)},
                          {"aux", Mean(auxes)}};
    if (options.eval_ppl) {
      CTXMEM_RETURN_IF_ERROR(method->Save(eval_weights, {}));
      compress::CompressionConfig c = FmConfig(options, method->eval_pruner());
      c.perceiver_weights = eval_weights;
      CTXMEM_ASSIGN_OR_RETURN(double ppl, HeldOutPpl(model, *validation, options.val_windows, c));
      row["ppl"] = ppl;
      p->val_ppl = ppl;
      if (!ck.curves.contains("reference")) {
        nlohmann::json ref;
        std::vector<std::string> refs = {"no_compress", "tova", "conv"};
        if (options.method != "perceiver") refs.push_back("mean_fuser");  // §7's baseline
        for (const std::string& pruner : refs) {
          CTXMEM_ASSIGN_OR_RETURN(double r, HeldOutPpl(model, *validation, options.val_windows,
                                                       FmConfig(options, pruner)));
          ref[pruner] = r;
        }
        ck.curves["reference"] = ref;
      }
    }
    ck.curves["validation"].push_back(row);
    p->evaluated = true;
    p->val_loss = Mean(losses);
    return absl::OkStatus();
  };
  auto write_curves = [&]() -> absl::Status {
    nlohmann::json c = ck.curves;
    c["method"] = options.method;
    c["objective"] = method->objective();
    c["chunk_size"] = options.loss.chunk_size;
    c["memory_size"] = options.loss.memory_size;
    c["n_chunks"] = options.n_chunks;
    c["val_windows"] = options.val_windows;
    return blob::WriteFileAtomically(options.out_dir + "/curves.json", c.dump(1) + "\n");
  };

  if (ck.step == 0 && ck.curves["validation"].empty()) {
    TrainProgress p0;
    CTXMEM_RETURN_IF_ERROR(evaluate(0, &p0));
    CTXMEM_RETURN_IF_ERROR(write_curves());
  }
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t tokens_at_start = ck.tokens;
  const int64_t start_step = ck.step;
  bool first = true;
  const double scale = 1.0 / static_cast<double>(options.batch * options.accum);
  for (int64_t step = ck.step; step < options.steps; ++step) {
    const double lr = schedule.At(step);
    std::vector<double> losses, lms, auxes;
    double grad_norm = 0;
    CTXMEM_RETURN_IF_ERROR(model::TorchCall("train step", [&]() -> absl::Status {
      optimizer->zero_grad();
      for (int64_t a = 0; a < options.batch * options.accum; ++a) {
        std::vector<int32_t> w = train.Window(options.seed, ck.windows++);
        CTXMEM_ASSIGN_OR_RETURN(WindowLoss l, method->Loss(model, w, scale));
        losses.push_back(l.total);
        lms.push_back(l.lm);
        auxes.push_back(l.aux);
        ck.tokens += l.n_forward_tokens;
      }
      if (options.clip > 0) {
        grad_norm = torch::nn::utils::clip_grad_norm_(module->parameters(), options.clip);
      }
      for (auto& group : optimizer->param_groups()) {
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
      }
      optimizer->step();
      return absl::OkStatus();
    }));
    ck.step = step + 1;
    ck.curves["train"].push_back({{"step", ck.step},
                                  {"tokens", ck.tokens},
                                  {"loss", Mean(losses)},
                                  {"lm", Mean(lms)},
                                  {"aux", Mean(auxes)},
                                  {"lr", lr},
                                  {"grad_norm", grad_norm}});
    TrainProgress p;
    p.step = ck.step;
    p.n_steps = options.steps;
    p.loss = Mean(losses);
    p.lm = Mean(lms);
    p.aux = Mean(auxes);
    p.lr = lr;
    p.grad_norm = grad_norm;
    p.tokens = ck.tokens;
    p.resumed = first && !resume_dir.empty();
    first = false;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    p.tokens_per_second = static_cast<double>(ck.tokens - tokens_at_start) / std::max(secs, 1e-9);
    const int64_t done_here = ck.step - start_step;
    p.eta_seconds = secs / static_cast<double>(std::max<int64_t>(1, done_here)) *
                    static_cast<double>(options.steps - ck.step);
    const bool last = ck.step == options.steps;
    if (last || (options.eval_every > 0 && ck.step % options.eval_every == 0)) {
      CTXMEM_RETURN_IF_ERROR(evaluate(ck.step, &p));
    }
    if (last || (options.checkpoint_every > 0 && ck.step % options.checkpoint_every == 0)) {
      CTXMEM_RETURN_IF_ERROR(SaveCheckpoint(options.out_dir, *method, *optimizer, ck, options));
      p.checkpointed = true;
    }
    CTXMEM_RETURN_IF_ERROR(write_curves());
    if (progress) progress(p);
    if (options.stop_after_steps > 0 && ck.step - start_step >= options.stop_after_steps &&
        ck.step < options.steps) {
      return absl::CancelledError(absl::StrCat("stopped after ", ck.step, " of ", options.steps,
                                               " steps (stop_after_steps)"));
    }
  }

  // A resume with no step left still leaves curves.json as the checkpoint has it (a run killed
  // after its last checkpoint may have written steps the checkpoint does not hold).
  CTXMEM_RETURN_IF_ERROR(write_curves());

  // The trained file and its manifest.
  TrainResult result;
  result.weights_path = options.out_dir + "/" + options.name + ".safetensors";
  result.manifest_path = options.out_dir + "/" + options.name + ".json";
  std::map<std::string, std::string> meta = {{"ctxmem.method", options.method},
                                             {"ctxmem.objective", method->objective()},
                                             {"ctxmem.steps", absl::StrCat(ck.step)},
                                             {"ctxmem.seed", absl::StrCat(options.seed)}};
  CTXMEM_RETURN_IF_ERROR(method->Save(result.weights_path, meta));
  CTXMEM_ASSIGN_OR_RETURN(std::string bytes, ReadFile(result.weights_path));
  CTXMEM_ASSIGN_OR_RETURN(result.sha256, blob::Sha256Hex(bytes));
  result.steps = ck.step;
  result.tokens = ck.tokens;
  result.curves = ck.curves;
  nlohmann::json manifest;
  manifest["name"] = options.name;
  manifest["method"] = options.method;
  manifest["objective"] = method->objective();
  manifest["command"] = options.command;
  manifest["data"] = options.data_info;
  manifest["train_windows"] = ck.windows;
  manifest["steps"] = ck.step;
  manifest["llm_forward_tokens"] = ck.tokens;
  manifest["window_tokens"] = window;
  manifest["options"] = {{"chunk_size", options.loss.chunk_size},
                         {"memory_size", options.loss.memory_size},
                         {"n_sinks", options.loss.n_sinks},
                         {"aux_weight", options.loss.aux_weight},
                         {"n_chunks", options.n_chunks},
                         {"lr", options.lr},
                         {"warmup", options.warmup},
                         {"min_lr_ratio", options.min_lr_ratio},
                         {"weight_decay", options.weight_decay},
                         {"batch", options.batch},
                         {"accum", options.accum},
                         {"clip", options.clip},
                         {"seed", options.seed}};
  const nlohmann::json shape = method->shape();  // a named object: items() borrows it
  for (const auto& [k, v] : shape.items()) manifest["options"][k] = v;
  const nlohmann::json& tr = ck.curves["train"];
  if (!tr.empty()) {
    manifest["first_loss"] = tr.front()["loss"];
    manifest["final_loss"] = tr.back()["loss"];
  }
  manifest["validation"] = ck.curves["validation"];
  if (ck.curves.contains("reference")) manifest["reference_ppl"] = ck.curves["reference"];
  manifest["sha256"] = result.sha256;
  manifest["bytes"] = bytes.size();
  CTXMEM_RETURN_IF_ERROR(blob::WriteFileAtomically(result.manifest_path, manifest.dump(1) + "\n"));
  std::error_code ignore;
  fs::remove(eval_weights, ignore);
  return result;
}

}  // namespace ctxmem::train
