#include "clients/cpp/train_command.h"

#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "clients/cpp/plot_runner.h"
#include "common/train/train_method.h"
#include "common/train/trainer.h"
#include "nlohmann/json.hpp"

namespace ctxmem::cli {
namespace {

std::string Duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  const int64_t t = static_cast<int64_t>(s);
  if (t >= 3600) return absl::StrCat(t / 3600, "h", (t % 3600) / 60, "m");
  if (t >= 60) return absl::StrCat(t / 60, "m", t % 60, "s");
  return absl::StrCat(t, "s");
}

void DrawProgress(const train::TrainProgress& p) {
  const int width = 24;
  const int filled = static_cast<int>(width * p.step / std::max<int64_t>(1, p.n_steps));
  std::string bar(filled, '#');
  bar.resize(width, '.');
  std::fprintf(stderr,
               "\r[%s] step %lld/%lld loss %.4f (lm %.3f aux %.4f) lr %.2e | %.0f tok/s | ETA %s",
               bar.c_str(), static_cast<long long>(p.step), static_cast<long long>(p.n_steps),
               p.loss, p.lm, p.aux, p.lr, p.tokens_per_second, Duration(p.eta_seconds).c_str());
  if (p.evaluated) {
    std::fprintf(stderr, "\n  validation: loss %.4f, held-out PPL %.3f%s\n", p.val_loss, p.val_ppl,
                 p.checkpointed ? " (checkpoint written)" : "");
  } else if (p.checkpointed) {
    std::fprintf(stderr, "  [checkpoint]");
  }
  std::fflush(stderr);
}

}  // namespace

CLI::App* AddTrainCommand(CLI::App* app, TrainArgs* args) {
  CLI::App* cmd = app->add_subcommand(
      "train", "Train a learned compressor around the frozen model (docs/training.md)");
  // Training keeps the fp32 dense reference by default (the frozen model's forward is
  // backpropagated through); --dtype bf16 is there to ask for it.
  args->model.dtype = "fp32";
  args->model.decode = "dense";
  AddModelFlags(cmd, &args->model);
  cmd->add_option("--method", args->method, "perceiver | rcc | perceiver_fuser | llm_fuser")
      ->capture_default_str();
  cmd->add_option("--objective", args->objective, "perceiver: seed | next_mse | next_kl")
      ->capture_default_str();
  cmd->add_option("--data", args->data_dir, "Books folder (DIR/train, DIR/validation)")->required();
  cmd->add_option("--out", args->out_dir, "Output folder (checkpoints, curves, weights)")
      ->required();
  cmd->add_option("--name", args->name, "Output stem (default <method>_<objective>)");
  cmd->add_option("--steps", args->steps, "Optimizer steps")->capture_default_str();
  cmd->add_option("--lr", args->lr, "Peak learning rate (AdamW)")->capture_default_str();
  cmd->add_option("--warmup", args->warmup, "Linear warmup steps")->capture_default_str();
  cmd->add_option("--min-lr-ratio", args->min_lr_ratio, "Cosine floor as a fraction of --lr")
      ->capture_default_str();
  cmd->add_option("--weight-decay", args->weight_decay, "AdamW weight decay")
      ->capture_default_str();
  cmd->add_option("--batch", args->batch, "Windows per micro-batch")->capture_default_str();
  cmd->add_option("--accum", args->accum, "Micro-batches per optimizer step")
      ->capture_default_str();
  cmd->add_option("--clip", args->clip, "Max gradient norm (<= 0: off)")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Seed of the init and the data order")
      ->capture_default_str();
  cmd->add_option("--chunk", args->chunk_size, "Chunk size C")->capture_default_str();
  cmd->add_option("--memory", args->memory_size, "Memory size M (FM)")->capture_default_str();
  cmd->add_option("--sinks", args->n_sinks, "Sink tokens")->capture_default_str();
  cmd->add_option("--chunks-per-window", args->n_chunks, "Chunks per training window")
      ->capture_default_str();
  cmd->add_option("--aux-weight", args->aux_weight, "Weight of the attention-distillation term")
      ->capture_default_str();
  cmd->add_option("--query-len", args->query_len, "Perceiver queries per layer")
      ->capture_default_str();
  cmd->add_option("--d-query", args->d_query, "Perceiver query width (divisible by kv heads)")
      ->capture_default_str();
  cmd->add_option("--temperature", args->temperature, "Perceiver softmax temperature")
      ->capture_default_str();
  cmd->add_option("--init", args->init_weights, "Start from this file of the method");
  cmd->add_option("--fuse-k", args->fuse_k, "perceiver_fuser: entries fused per anchor")
      ->capture_default_str();
  cmd->add_option("--fuser-norm", args->fuser_norm, "perceiver_fuser: pre (ctxmem) | seed")
      ->capture_default_str();
  cmd->add_option("--lora-rank", args->lora_rank, "llm_fuser: LoRA rank r")->capture_default_str();
  cmd->add_option("--lora-alpha", args->lora_alpha, "llm_fuser: LoRA alpha (<= 0: 2 r)")
      ->capture_default_str();
  cmd->add_option("--checkpoint-every", args->checkpoint_every, "Steps between checkpoints")
      ->capture_default_str();
  cmd->add_option("--eval-every", args->eval_every, "Steps between validations")
      ->capture_default_str();
  cmd->add_option("--val-windows", args->val_windows, "Validation windows per evaluation")
      ->capture_default_str();
  cmd->add_flag("--no-eval-ppl", args->no_eval_ppl,
                "Skip the held-out compressed PPL (and tova/conv references) at evaluations");
  cmd->add_flag("--resume", args->resume, "Continue from --out/checkpoint when there is one");
  cmd->add_option("--python", args->python, "Python with matplotlib for the plot")
      ->envname("CTXMEM_PYTHON")
      ->capture_default_str();
  cmd->add_flag("--no-plot", args->no_plot, "Write JSON only");
  AddRccTrainFlags(cmd, &args->rcc);
  return cmd;
}

int RunTrain(const TrainArgs& args, const std::string& command_line) {
  const std::string kCommand = "train";
  if (args.method == "rcc") return RunTrainRcc(args, command_line);
  train::TrainOptions o;
  o.method = args.method;
  if (absl::Status s = train::CheckTrainMethod(args.method); !s.ok()) {
    return ReportError(kCommand, s);
  }
  std::string objective_name = args.objective;
  if (args.method == "perceiver") {
    absl::StatusOr<train::PerceiverObjective> objective =
        train::ParsePerceiverObjective(args.objective);
    if (!objective.ok()) return ReportError(kCommand, objective.status());
    o.loss.objective = *objective;
  } else {
    // The fusers have one objective, the seed's LM loss (spec §7): "lm" (or the default "seed").
    if (args.objective != "lm" && args.objective != "seed") {
      return ReportError(kCommand, absl::InvalidArgumentError(absl::StrCat(
                                       "--objective ", args.objective, ": ", args.method,
                                       " trains with lm (the seed's LM loss) only")));
    }
    objective_name = "lm";
  }
  o.name = args.name.empty() ? absl::StrCat(args.method, "_", objective_name) : args.name;
  o.fuse_k = args.fuse_k;
  o.fuser_norm = args.fuser_norm;
  o.lora_rank = args.lora_rank;
  o.lora_alpha = args.lora_alpha;
  o.loss.chunk_size = args.chunk_size;
  o.loss.memory_size = args.memory_size;
  o.loss.n_sinks = args.n_sinks;
  o.loss.aux_weight = args.aux_weight;
  o.n_chunks = args.n_chunks;
  o.shape.query_len = args.query_len;
  o.shape.d_query = args.d_query;
  o.shape.temperature = args.temperature;
  o.init_weights = args.init_weights;
  o.steps = args.steps;
  o.lr = args.lr;
  o.warmup = args.warmup;
  o.min_lr_ratio = args.min_lr_ratio;
  o.weight_decay = args.weight_decay;
  o.batch = args.batch;
  o.accum = args.accum;
  o.clip = args.clip;
  o.seed = args.seed;
  o.checkpoint_every = args.checkpoint_every;
  o.eval_every = args.eval_every;
  o.val_windows = args.val_windows;
  o.eval_ppl = !args.no_eval_ppl;
  o.out_dir = args.out_dir;
  o.resume = args.resume;
  o.command = command_line;
  if (absl::Status s = MakeOutputDir(args.out_dir); !s.ok()) return ReportError(kCommand, s);
  absl::StatusOr<std::unique_ptr<model::Model>> model = LoadModel(args.model);
  if (!model.ok()) return ReportError(kCommand, model.status());
  const int64_t window = args.n_chunks * args.chunk_size;
  const model::ModelConfig& mc = (*model)->config();
  absl::StatusOr<train::TextWindows> train_data =
      train::TextWindows::Load(args.data_dir, "train", (*model)->tokenizer(), mc.n_vocab, window);
  if (!train_data.ok()) return ReportError(kCommand, train_data.status());
  absl::StatusOr<train::TextWindows> val_data = train::TextWindows::Load(
      args.data_dir, "validation", (*model)->tokenizer(), mc.n_vocab, window);
  if (!val_data.ok()) return ReportError(kCommand, val_data.status());
  std::fprintf(
      stderr, "train: %lld books, %lld tokens; validation: %lld books, %lld tokens\n",
      static_cast<long long>(train_data->n_books()), static_cast<long long>(train_data->n_tokens()),
      static_cast<long long>(val_data->n_books()), static_cast<long long>(val_data->n_tokens()));
  o.data_info = {{"dir", args.data_dir},
                 {"train_tokens", train_data->n_tokens()},
                 {"train_books", train_data->n_books()},
                 {"validation_tokens", val_data->n_tokens()},
                 {"validation_books", val_data->n_books()},
                 {"model", (*model)->path()}};
  if (absl::StatusOr<std::string> m = ReadTextFile(args.data_dir + "/manifest.json"); m.ok()) {
    nlohmann::json j = nlohmann::json::parse(*m, nullptr, false);
    if (!j.is_discarded() && j.contains("files")) {
      nlohmann::json files = nlohmann::json::array();
      for (const auto& f : j["files"]) {
        files.push_back({{"path", f.value("path", "")},
                         {"package", f.value("package", "")},
                         {"version", f.value("version", "")},
                         {"license", f.value("license", "")},
                         {"sha256", f.value("sha256", "")}});
      }
      o.data_info["files"] = files;
    }
  }
  absl::StatusOr<train::TrainResult> result =
      train::Train((*model)->transformer(), *train_data, &*val_data, o,
                   [](const train::TrainProgress& p) { DrawProgress(p); });
  std::fprintf(stderr, "\n");
  if (!result.ok()) return ReportError(kCommand, result.status());
  std::printf("wrote %s (sha256 %s) and %s after %lld steps, %lld LLM tokens\n",
              result->weights_path.c_str(), result->sha256.c_str(), result->manifest_path.c_str(),
              static_cast<long long>(result->steps), static_cast<long long>(result->tokens));
  if (!args.no_plot) {
    const std::string curves = args.out_dir + "/curves.json";
    DrawPlotOrWarn(kCommand, args.python, "plot_training.py",
                   {curves, "--out", args.out_dir + "/curves.png"}, curves + " is");
  }
  return 0;
}

}  // namespace ctxmem::cli
