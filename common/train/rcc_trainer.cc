#include "common/train/rcc_trainer.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/blob/atomic_file.h"
#include "common/blob/sha256.h"
#include "common/model/torch_call.h"
#include "common/model/transformer.h"
#include "common/status.h"
#include "common/train/lr_schedule.h"

namespace ctxmem::train {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kValidationSeed = 0x76616c6964ull;  // "valid", as Train()

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status CheckOptions(const RccTrainOptions& o) {
  auto bad = [](auto&&... p) { return absl::InvalidArgumentError(absl::StrCat(p...)); };
  if (o.out_dir.empty()) return bad("--out is required");
  if (o.steps < 1 || o.accum < 1) return bad("--steps and --accum must be >= 1");
  if (o.val_windows < 0) return bad("--val-windows must be >= 0");
  if (!(o.reconstruction >= 0 && o.continuation >= 0 && o.instruction >= 0) ||
      o.reconstruction + o.continuation + o.instruction <= 0) {
    return bad("--mix ratios must be >= 0 and not all 0");
  }
  return absl::OkStatus();
}

// The task and span start of sample `index` (a pure function of seed and index).
std::pair<RccTask, int64_t> Draw(const RccTrainOptions& o, uint64_t seed, int64_t index) {
  uint64_t state = seed ^ (0x9e3779b97f4a7c15ull * static_cast<uint64_t>(index + 1));
  const double u = static_cast<double>(SplitMix64(state) >> 11) * 0x1.0p-53;
  const double total = o.reconstruction + o.continuation + o.instruction;
  RccTask task = u * total < o.reconstruction                    ? RccTask::kReconstruction
                 : u * total < o.reconstruction + o.continuation ? RccTask::kContinuation
                                                                 : RccTask::kInstruction;
  const int64_t starts = std::max<int64_t>(1, o.loss.window - o.loss.span + 1);
  return {task, static_cast<int64_t>(SplitMix64(state) % static_cast<uint64_t>(starts))};
}

struct Eval {
  double recon_loss = 0, recon_accuracy = 0, continuation_loss = 0;
};

absl::StatusOr<Eval> Evaluate(const model::Transformer& model, const learned::RccBridge& bridge,
                              const TextWindows& val, const RccTrainOptions& o) {
  Eval e;
  int64_t correct = 0, scored = 0;
  for (int64_t i = 0; i < o.val_windows; ++i) {
    std::vector<int32_t> w = val.Window(kValidationSeed, i);
    const int64_t start = Draw(o, kValidationSeed, i).second;
    CTXMEM_ASSIGN_OR_RETURN(RccSampleLoss r,
                            RccLoss(model, bridge, w, o.loss, RccTask::kReconstruction, start));
    CTXMEM_ASSIGN_OR_RETURN(RccSampleLoss c,
                            RccLoss(model, bridge, w, o.loss, RccTask::kContinuation, 0));
    e.recon_loss += r.loss / o.val_windows;
    e.continuation_loss += c.loss / o.val_windows;
    correct += r.n_correct;
    scored += r.n_scored;
  }
  e.recon_accuracy = scored > 0 ? static_cast<double>(correct) / scored : 0;
  return e;
}

nlohmann::json EvalJson(const Eval& e) {
  return {{"recon_loss", e.recon_loss},
          {"recon_accuracy", e.recon_accuracy},
          {"continuation_loss", e.continuation_loss}};
}

absl::Status SaveCheckpoint(const RccTrainOptions& o, const learned::RccBridge& bridge,
                            torch::optim::AdamW& optimizer, const nlohmann::json& state) {
  const std::string dir = o.out_dir + "/checkpoint", tmp = o.out_dir + "/checkpoint.tmp",
                    old = o.out_dir + "/checkpoint.old";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("creating ", tmp, ": ", ec.message()));
  CTXMEM_RETURN_IF_ERROR(bridge.Save(tmp + "/weights.safetensors"));
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("saving the optimizer",
                                          [&] { torch::save(optimizer, tmp + "/optimizer.pt"); }));
  CTXMEM_RETURN_IF_ERROR(blob::WriteFileAtomically(tmp + "/state.json", state.dump(1) + "\n"));
  CTXMEM_RETURN_IF_ERROR(blob::SyncDirectory(tmp));
  fs::remove_all(old, ec);
  if (fs::exists(dir)) fs::rename(dir, old, ec);
  if (ec) return absl::InternalError(absl::StrCat("renaming ", dir, ": ", ec.message()));
  fs::rename(tmp, dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("renaming ", tmp, ": ", ec.message()));
  CTXMEM_RETURN_IF_ERROR(blob::SyncDirectory(o.out_dir));
  fs::remove_all(old, ec);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TrainResult> TrainRcc(const model::Transformer& model, const TextWindows& train,
                                     const TextWindows* validation, const RccTrainOptions& options,
                                     const std::function<void(const TrainProgress&)>& progress) {
  CTXMEM_RETURN_IF_ERROR(CheckOptions(options));
  RccTrainOptions o = options;
  o.loss.window = o.shape.window;
  o.loss.rate = o.shape.rate;
  const int64_t sample_len = o.loss.window + o.loss.continuation;
  if (train.window_len() != sample_len ||
      (validation != nullptr && validation->window_len() != sample_len)) {
    return absl::InvalidArgumentError(
        absl::StrCat("data windows of ", train.window_len(),
                     " tokens; rcc needs window + continuation = ", sample_len));
  }
  const model::ModelConfig& mc = model.config();
  CTXMEM_ASSIGN_OR_RETURN(LrSchedule schedule,
                          LrSchedule::Create(o.lr, o.warmup, o.steps, o.min_lr_ratio));
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("creating ", o.out_dir, ": ", ec.message()));
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("seed", [&] { torch::manual_seed(o.seed); }));

  std::string resume_dir;
  for (const char* name : {"/checkpoint", "/checkpoint.old"}) {
    const std::string d = o.out_dir + name;
    if (o.resume && resume_dir.empty() && fs::exists(d + "/state.json") &&
        fs::exists(d + "/optimizer.pt")) {
      resume_dir = d;
    }
  }
  const std::string init =
      !resume_dir.empty() ? resume_dir + "/weights.safetensors" : o.init_weights;
  learned::RccBridge bridge = learned::RccBridge::Stride(mc.n_layers, mc.hidden);
  if (!init.empty()) {
    CTXMEM_ASSIGN_OR_RETURN(bridge, learned::RccBridge::Load(init));
  } else {
    learned::RccBridgeShape shape = o.shape;
    shape.n_layers = mc.n_layers;
    shape.hidden = mc.hidden;
    CTXMEM_ASSIGN_OR_RETURN(bridge, learned::RccBridge::Create(shape));
  }
  CTXMEM_RETURN_IF_ERROR(bridge.CheckFits(mc.n_layers, mc.hidden));
  CTXMEM_RETURN_IF_ERROR(
      model::TorchCall("bridge to device", [&] { bridge.MoveTo(model.device()); }));
  std::vector<at::Tensor> params = bridge.parameters();
  std::unique_ptr<torch::optim::AdamW> optimizer;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("optimizer", [&] {
    for (at::Tensor& p : params) p.requires_grad_(true);
    optimizer = std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  }));
  nlohmann::json state = {{"step", 0}, {"windows", 0}, {"tokens", 0}};
  nlohmann::json curves = {{"train", nlohmann::json::array()},
                           {"validation", nlohmann::json::array()}};
  if (!resume_dir.empty()) {
    CTXMEM_RETURN_IF_ERROR(model::TorchCall(
        "loading the optimizer", [&] { torch::load(*optimizer, resume_dir + "/optimizer.pt"); }));
    CTXMEM_ASSIGN_OR_RETURN(std::string text, ReadFile(resume_dir + "/state.json"));
    state = nlohmann::json::parse(text, nullptr, false);
    if (state.is_discarded() || !state.contains("curves")) {
      return absl::InvalidArgumentError(absl::StrCat(resume_dir, "/state.json is malformed"));
    }
    curves = state["curves"];
  }
  int64_t step0 = state["step"].get<int64_t>(), windows = state["windows"].get<int64_t>(),
          tokens = state["tokens"].get<int64_t>();
  auto write_curves = [&]() {
    nlohmann::json c = curves;
    c["method"] = "rcc";
    c["variant"] = std::string(learned::RccVariantName(bridge.shape().variant));
    c["window"] = o.loss.window;
    c["rate"] = o.loss.rate;
    c["mix"] = {{"reconstruction", o.reconstruction},
                {"continuation", o.continuation},
                {"instruction", o.instruction}};
    return blob::WriteFileAtomically(o.out_dir + "/curves.json", c.dump(1) + "\n");
  };
  auto evaluate = [&](int64_t step, TrainProgress* p) -> absl::Status {
    if (validation == nullptr || o.val_windows == 0) return absl::OkStatus();
    at::NoGradGuard no_grad;
    if (!curves.contains("reference")) {
      CTXMEM_ASSIGN_OR_RETURN(
          Eval ref,
          Evaluate(model, learned::RccBridge::Stride(mc.n_layers, mc.hidden), *validation, o));
      curves["reference"] = {{"stride", EvalJson(ref)}};
    }
    CTXMEM_ASSIGN_OR_RETURN(Eval e, Evaluate(model, bridge, *validation, o));
    nlohmann::json row = EvalJson(e);
    row["step"] = step;
    row["tokens"] = tokens;
    curves["validation"].push_back(row);
    p->evaluated = true;
    p->val_loss = e.recon_loss;
    p->val_ppl = std::exp(e.continuation_loss);
    return absl::OkStatus();
  };
  if (step0 == 0 && curves["validation"].empty()) {
    TrainProgress p0;
    CTXMEM_RETURN_IF_ERROR(evaluate(0, &p0));
    CTXMEM_RETURN_IF_ERROR(write_curves());
  }
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t tokens_at_start = tokens;
  for (int64_t step = step0; step < o.steps; ++step) {
    const double lr = schedule.At(step);
    double loss = 0, grad_norm = 0;
    int64_t correct = 0, scored = 0;
    CTXMEM_RETURN_IF_ERROR(model::TorchCall("train step", [&]() -> absl::Status {
      optimizer->zero_grad();
      for (int64_t a = 0; a < o.accum; ++a) {
        const int64_t index = windows++;
        std::vector<int32_t> w = train.Window(o.seed, index);
        const auto [task, start] = Draw(o, o.seed, index);
        CTXMEM_ASSIGN_OR_RETURN(RccSampleLoss l,
                                RccLoss(model, bridge, w, o.loss, task, start, 1.0 / o.accum));
        loss += l.loss / o.accum;
        correct += l.n_correct;
        scored += l.n_scored;
        tokens += l.n_forward_tokens;
      }
      if (o.clip > 0) grad_norm = torch::nn::utils::clip_grad_norm_(params, o.clip);
      for (auto& group : optimizer->param_groups()) {
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
      }
      optimizer->step();
      return absl::OkStatus();
    }));
    const int64_t done = step + 1;
    curves["train"].push_back(
        {{"step", done},
         {"tokens", tokens},
         {"loss", loss},
         {"accuracy", static_cast<double>(correct) / std::max<int64_t>(1, scored)},
         {"lr", lr},
         {"grad_norm", grad_norm}});
    TrainProgress p;
    p.step = done;
    p.n_steps = o.steps;
    p.loss = p.lm = loss;
    p.lr = lr;
    p.grad_norm = grad_norm;
    p.tokens = tokens;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    p.tokens_per_second = static_cast<double>(tokens - tokens_at_start) / std::max(secs, 1e-9);
    p.eta_seconds = secs / static_cast<double>(done - step0) * static_cast<double>(o.steps - done);
    const bool last = done == o.steps;
    if (last || (o.eval_every > 0 && done % o.eval_every == 0)) {
      CTXMEM_RETURN_IF_ERROR(evaluate(done, &p));
    }
    if (last || (o.checkpoint_every > 0 && done % o.checkpoint_every == 0)) {
      nlohmann::json s = {{"step", done},
                          {"windows", windows},
                          {"tokens", tokens},
                          {"seed", o.seed},
                          {"curves", curves}};
      CTXMEM_RETURN_IF_ERROR(SaveCheckpoint(o, bridge, *optimizer, s));
      p.checkpointed = true;
    }
    CTXMEM_RETURN_IF_ERROR(write_curves());
    if (progress) progress(p);
    if (o.stop_after_steps > 0 && done - step0 >= o.stop_after_steps && !last) {
      return absl::CancelledError(
          absl::StrCat("stopped after ", done, " of ", o.steps, " steps (stop_after_steps)"));
    }
  }

  TrainResult result;
  result.weights_path = o.out_dir + "/" + o.name + ".safetensors";
  result.manifest_path = o.out_dir + "/" + o.name + ".json";
  CTXMEM_RETURN_IF_ERROR(bridge.Save(
      result.weights_path, o.save_bf16,
      {{"ctxmem.steps", absl::StrCat(o.steps)}, {"ctxmem.seed", absl::StrCat(o.seed)}}));
  CTXMEM_ASSIGN_OR_RETURN(std::string bytes, ReadFile(result.weights_path));
  CTXMEM_ASSIGN_OR_RETURN(result.sha256, blob::Sha256Hex(bytes));
  result.steps = o.steps;
  result.tokens = tokens;
  result.curves = curves;
  nlohmann::json manifest = {
      {"name", o.name},
      {"method", "rcc"},
      {"command", o.command},
      {"data", o.data_info},
      {"train_windows", windows},
      {"steps", o.steps},
      {"llm_forward_tokens", tokens},
      {"bridge",
       {{"variant", std::string(learned::RccVariantName(bridge.shape().variant))},
        {"rank", bridge.shape().rank},
        {"window", o.loss.window},
        {"rate", o.loss.rate},
        {"parameters", bridge.n_parameters()},
        {"dtype", o.save_bf16 ? "bf16" : "f32"}}},
      {"options",
       {{"hint", o.loss.hint},
        {"span", o.loss.span},
        {"continuation", o.loss.continuation},
        {"reconstruction", o.reconstruction},
        {"continuation_ratio", o.continuation},
        {"instruction", o.instruction},
        {"lr", o.lr},
        {"warmup", o.warmup},
        {"min_lr_ratio", o.min_lr_ratio},
        {"weight_decay", o.weight_decay},
        {"accum", o.accum},
        {"clip", o.clip},
        {"seed", o.seed}}},
      {"validation", curves["validation"]},
      {"sha256", result.sha256},
      {"bytes", bytes.size()}};
  if (curves.contains("reference")) manifest["reference"] = curves["reference"];
  CTXMEM_RETURN_IF_ERROR(blob::WriteFileAtomically(result.manifest_path, manifest.dump(1) + "\n"));
  return result;
}

}  // namespace ctxmem::train
