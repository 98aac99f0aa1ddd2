#include "clients/cpp/train_rcc_command.h"

#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "clients/cpp/eval_flags.h"
#include "clients/cpp/plot_runner.h"
#include "clients/cpp/train_command.h"
#include "common/status.h"
#include "common/train/rcc_trainer.h"

namespace ctxmem::cli {
namespace {

absl::Status ParseMix(const std::string& mix, train::RccTrainOptions* o) {
  o->reconstruction = o->continuation = o->instruction = 0;
  for (const std::string& item : SplitList(mix)) {
    const size_t eq = item.find('=');
    double v = 0;
    if (eq == std::string::npos || !absl::SimpleAtod(item.substr(eq + 1), &v)) {
      return absl::InvalidArgumentError(absl::StrCat("--mix item '", item, "': expected TASK=R"));
    }
    CTXMEM_ASSIGN_OR_RETURN(train::RccTask task, train::ParseRccTask(item.substr(0, eq)));
    (task == train::RccTask::kReconstruction ? o->reconstruction
     : task == train::RccTask::kContinuation ? o->continuation
                                             : o->instruction) = v;
  }
  return absl::OkStatus();
}

}  // namespace

void AddRccTrainFlags(CLI::App* cmd, RccTrainFlags* f) {
  cmd->add_option("--rcc-variant", f->variant, "rcc: residual (zero-init) | paper")
      ->capture_default_str();
  cmd->add_option("--rcc-rank", f->rank, "rcc: bridge rank (0 = full)")->capture_default_str();
  cmd->add_option("--rcc-window", f->window, "rcc: encoder window W")->capture_default_str();
  cmd->add_option("--rcc-rate", f->rate, "rcc: rate r (one slot per r tokens)")
      ->capture_default_str();
  cmd->add_option("--rcc-hint", f->hint, "rcc: unscored cue tokens")->capture_default_str();
  cmd->add_option("--rcc-span", f->span, "rcc: reconstruction span")->capture_default_str();
  cmd->add_option("--rcc-continuation", f->continuation, "rcc: continuation tokens")
      ->capture_default_str();
  cmd->add_option("--mix", f->mix, "rcc: task ratios reconstruction=A,continuation=B,instruction=C")
      ->capture_default_str();
  cmd->add_flag("--rcc-f32", f->f32, "rcc: save the bridge in fp32 (default bf16)");
}

int RunTrainRcc(const TrainArgs& args, const std::string& command_line) {
  const std::string kCommand = "train";
  const RccTrainFlags& f = args.rcc;
  train::RccTrainOptions o;
  o.name = args.name.empty() ? "rcc" : args.name;
  absl::StatusOr<learned::RccVariant> variant = learned::ParseRccVariant(f.variant);
  if (!variant.ok()) return ReportError(kCommand, variant.status());
  o.shape = {*variant, 0, 0, f.rank, f.window, f.rate};
  o.loss.hint = f.hint;
  o.loss.span = f.span;
  o.loss.continuation = f.continuation;
  if (absl::Status s = ParseMix(f.mix, &o); !s.ok()) return ReportError(kCommand, s);
  o.init_weights = args.init_weights;
  o.steps = args.steps;
  o.lr = args.lr;
  o.warmup = args.warmup;
  o.min_lr_ratio = args.min_lr_ratio;
  o.weight_decay = args.weight_decay;
  o.accum = args.accum * args.batch;
  o.clip = args.clip;
  o.seed = args.seed;
  o.checkpoint_every = args.checkpoint_every;
  o.eval_every = args.eval_every;
  o.val_windows = args.val_windows;
  o.save_bf16 = !f.f32;
  o.out_dir = args.out_dir;
  o.resume = args.resume;
  o.command = command_line;
  if (absl::Status s = MakeOutputDir(args.out_dir); !s.ok()) return ReportError(kCommand, s);
  absl::StatusOr<std::unique_ptr<model::Model>> model = LoadModel(args.model);
  if (!model.ok()) return ReportError(kCommand, model.status());
  const model::ModelConfig& mc = (*model)->config();
  const int64_t len = f.window + f.continuation;
  absl::StatusOr<train::TextWindows> train_data =
      train::TextWindows::Load(args.data_dir, "train", (*model)->tokenizer(), mc.n_vocab, len);
  if (!train_data.ok()) return ReportError(kCommand, train_data.status());
  absl::StatusOr<train::TextWindows> val_data =
      train::TextWindows::Load(args.data_dir, "validation", (*model)->tokenizer(), mc.n_vocab, len);
  if (!val_data.ok()) return ReportError(kCommand, val_data.status());
  o.data_info = {{"dir", args.data_dir},
                 {"train_tokens", train_data->n_tokens()},
                 {"validation_tokens", val_data->n_tokens()},
                 {"model", (*model)->path()}};
  auto progress = [](const train::TrainProgress& p) {
    std::fprintf(stderr, "step %lld/%lld loss %.4f lr %.2e | %.0f tok/s | ETA %.0fs\n",
                 static_cast<long long>(p.step), static_cast<long long>(p.n_steps), p.loss, p.lr,
                 p.tokens_per_second, p.eta_seconds);
    if (p.evaluated) {
      std::fprintf(stderr, "  validation: recon loss %.4f, continuation PPL %.3f%s\n", p.val_loss,
                   p.val_ppl, p.checkpointed ? " (checkpoint written)" : "");
    }
    std::fflush(stderr);
  };
  absl::StatusOr<train::TrainResult> result =
      train::TrainRcc((*model)->transformer(), *train_data, &*val_data, o, progress);
  if (!result.ok()) return ReportError(kCommand, result.status());
  std::printf("wrote %s (sha256 %s) and %s after %lld steps, %lld LLM tokens\n",
              result->weights_path.c_str(), result->sha256.c_str(), result->manifest_path.c_str(),
              static_cast<long long>(result->steps), static_cast<long long>(result->tokens));
  if (!args.no_plot) {
    const std::string curves = args.out_dir + "/curves.json";
    DrawPlotOrWarn(kCommand, args.python, "plot_rcc_training.py",
                   {curves, "--out", args.out_dir + "/curves.png"}, curves + " is");
  }
  return 0;
}

}  // namespace ctxmem::cli
