// Training throughput and the training run itself without the CLI's service dependencies:
// runs common/train's Train() on the bundled model with `ctxmem train`'s options (same
// defaults, same output folder layout, so `ctxmem train --resume --out DIR` continues a run
// started here and vice versa). Prints the progress bar's numbers, one line per step.
// Usage: train_bench --model M --data DIR --out DIR [--method perceiver|perceiver_fuser|
//        llm_fuser] [--objective next_kl] [--lora-rank 16] [--fuse-k 4] [--steps 60]
//        [--accum 2] [--lr 3e-3] [--warmup 5] [--chunk 512] [--memory 128] [--chunks 3]
//        [--eval-every 10] [--checkpoint-every 5] [--val-windows 2] [--threads 1] [--resume]

#include <ATen/Parallel.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "CLI/CLI.hpp"
#include "common/model/model.h"
#include "common/train/trainer.h"

int main(int argc, char** argv) {
  using namespace ctxmem;
  std::string model_path, data, objective = "next_kl";
  train::TrainOptions o;
  int threads = 1;
  CLI::App app{"ctxmem training run / throughput (bench)"};
  app.add_option("--model", model_path)->required();
  app.add_option("--data", data)->required();
  app.add_option("--out", o.out_dir)->required();
  app.add_option("--method", o.method, "perceiver | perceiver_fuser | llm_fuser");
  app.add_option("--objective", objective);
  app.add_option("--lora-rank", o.lora_rank);
  app.add_option("--fuse-k", o.fuse_k);
  app.add_option("--eval-ppl", o.eval_ppl);
  app.add_option("--name", o.name);
  app.add_option("--steps", o.steps);
  app.add_option("--accum", o.accum);
  app.add_option("--lr", o.lr);
  app.add_option("--warmup", o.warmup);
  app.add_option("--chunk", o.loss.chunk_size);
  app.add_option("--memory", o.loss.memory_size);
  app.add_option("--chunks", o.n_chunks);
  app.add_option("--d-query", o.shape.d_query);
  app.add_option("--query-len", o.shape.query_len);
  app.add_option("--eval-every", o.eval_every);
  app.add_option("--checkpoint-every", o.checkpoint_every);
  app.add_option("--val-windows", o.val_windows);
  app.add_option("--seed", o.seed);
  app.add_option("--threads", threads);
  app.add_flag("--resume", o.resume);
  CLI11_PARSE(app, argc, argv);
  if (o.method == "perceiver") {
    auto obj = train::ParsePerceiverObjective(objective);
    if (!obj.ok()) {
      std::fprintf(stderr, "%s\n", obj.status().ToString().c_str());
      return 1;
    }
    o.loss.objective = *obj;
  } else {
    objective = "lm";  // the fusers' one objective (spec §7)
  }
  if (o.name == "perceiver") o.name = o.method + "_" + objective;
  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  o.command = command;
  model::ModelOptions mo;
  mo.n_threads = threads;
  auto m = model::Model::Load(model_path, mo);
  if (!m.ok()) {
    std::fprintf(stderr, "%s\n", m.status().ToString().c_str());
    return 1;
  }
  const int64_t window = o.n_chunks * o.loss.chunk_size;
  auto tr =
      train::TextWindows::Load(data, "train", (*m)->tokenizer(), (*m)->config().n_vocab, window);
  auto va = train::TextWindows::Load(data, "validation", (*m)->tokenizer(), (*m)->config().n_vocab,
                                     window);
  if (!tr.ok() || !va.ok()) {
    std::fprintf(stderr, "data: %s %s\n", tr.status().ToString().c_str(),
                 va.status().ToString().c_str());
    return 1;
  }
  o.data_info = {
      {"dir", data}, {"train_tokens", tr->n_tokens()}, {"validation_tokens", va->n_tokens()}};
  std::printf("train %lld tokens (%lld books), validation %lld tokens (%lld books)\n",
              static_cast<long long>(tr->n_tokens()), static_cast<long long>(tr->n_books()),
              static_cast<long long>(va->n_tokens()), static_cast<long long>(va->n_books()));
  std::fflush(stdout);
  auto r = train::Train((*m)->transformer(), *tr, &*va, o, [](const train::TrainProgress& p) {
    std::printf(
        "step %lld/%lld loss %.5f lm %.4f aux %.5f lr %.2e grad %.3f tokens %lld "
        "tok/s %.1f eta_s %.0f%s%s\n",
        static_cast<long long>(p.step), static_cast<long long>(p.n_steps), p.loss, p.lm, p.aux,
        p.lr, p.grad_norm, static_cast<long long>(p.tokens), p.tokens_per_second, p.eta_seconds,
        p.checkpointed ? " [checkpoint]" : "",
        p.evaluated ? (" [val loss " + std::to_string(p.val_loss) + " ppl " +
                       std::to_string(p.val_ppl) + "]")
                          .c_str()
                    : "");
    std::fflush(stdout);
  });
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf("wrote %s sha256 %s\n", r->weights_path.c_str(), r->sha256.c_str());
  return 0;
}
