#include "clients/cpp/compress_command.h"

#include <absl/strings/str_cat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "clients/cpp/stat_command.h"
#include "ctxmem/v1/compressor.grpc.pb.h"

namespace ctxmem::cli {
namespace {

// Bytes of text per CompressRequest: far below any sane --max-request-bytes on the server.
constexpr size_t kPieceBytes = 64 << 10;
constexpr int kBarWidth = 30;

using Clock = std::chrono::steady_clock;

// Draws one progress line on stderr: redrawn in place on a terminal, otherwise a new line at
// most every 5 s (logs of CI jobs stay short). Not thread-safe; the reader thread owns it.
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled), tty_(isatty(STDERR_FILENO) == 1) {}

  void Update(const v1::CompressProgress& p, bool force) {
    if (!enabled_) return;
    Clock::time_point now = Clock::now();
    double since_print = std::chrono::duration<double>(now - last_print_).count();
    if (!force && since_print < (tty_ ? 0.1 : 5.0)) return;
    last_print_ = now;
    double elapsed = std::chrono::duration<double>(now - start_).count();
    double rate = elapsed > 0 ? static_cast<double>(p.tokens_read()) / elapsed : 0;
    std::string bar;
    std::string total = "?";
    if (p.tokens_total() > 0) {
      double frac = std::min(1.0, static_cast<double>(p.tokens_read()) / p.tokens_total());
      int filled = static_cast<int>(frac * kBarWidth);
      bar = absl::StrCat("[", std::string(filled, '#'), std::string(kBarWidth - filled, '.'), "] ",
                         static_cast<int>(frac * 100), "% ");
      total = absl::StrCat(p.tokens_total());
    }
    std::fprintf(stderr, "%s%s%lld/%s tokens, %lld chunks, memory %lld, %.0f tok/s, %.1f s%s",
                 tty_ ? "\r\033[K" : "", bar.c_str(), static_cast<long long>(p.tokens_read()),
                 total.c_str(), static_cast<long long>(p.chunks_done()),
                 static_cast<long long>(p.memory_len()), rate, elapsed, tty_ ? "" : "\n");
    drawn_ = true;
  }

  void Message(const std::string& line) {
    if (!enabled_) return;
    End();
    std::fprintf(stderr, "%s\n", line.c_str());
  }

  // Ends the in-place line so later output starts on a fresh one.
  void End() {
    if (enabled_ && tty_ && drawn_) std::fprintf(stderr, "\n");
    drawn_ = false;
  }

 private:
  const bool enabled_;
  const bool tty_;
  bool drawn_ = false;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_print_{};
};

v1::CompressStart MakeStart(const CompressArgs& args) {
  v1::CompressStart start;
  v1::CompressionConfig* c = start.mutable_config();
  c->set_pruner(args.pruner);
  c->set_memory_type(args.memory_type);
  if (args.memory_size) c->set_memory_size(*args.memory_size);
  c->set_chunk_size(args.chunk_size);
  c->set_schedule(args.schedule);
  if (args.n_sink_tokens) c->set_n_sink_tokens(*args.n_sink_tokens);
  c->set_position_mode(args.position_mode);
  c->set_score_mode(args.score_mode);
  c->set_score_window(args.score_window);
  c->set_conv_kernel_size(args.conv_kernel_size);
  c->set_double_compress_size(args.double_compress_size);
  c->set_seed(args.seed);
  c->set_kv_dtype(args.kv_dtype);
  c->set_kv_group_size(args.kv_group_size);
  c->set_model(args.model_name);
  start.set_base_memory_id(args.base_memory_id);
  start.set_client_label(args.label);
  start.set_expected_tokens(args.expected_tokens);
  start.set_add_bos(args.add_bos);
  return start;
}

void PrintDone(const v1::CompressDone& done, const CompressArgs& args) {
  if (args.json) {
    std::printf("%s\n", ToJson(done).c_str());
    return;
  }
  if (args.quiet) {
    std::printf("%s\n", done.memory().memory_id().c_str());
    return;
  }
  PrintMemoryInfo(done.memory(), stdout);
  const v1::CompressTimings& t = done.timings();
  std::printf("existed            %s\n", done.existed() ? "yes (nothing computed)" : "no");
  std::printf(
      "timings            tokenize %.2f s, queue %.2f s, compress %.2f s, seal %.2f s, "
      "total %.2f s\n",
      t.tokenize_seconds(), t.queue_seconds(), t.compress_seconds(), t.seal_seconds(),
      t.total_seconds());
}

}  // namespace

CLI::App* AddCompressCommand(CLI::App* app, CompressArgs* args) {
  CLI::App* cmd = app->add_subcommand(
      "compress", "Compress a text file into a memory on the compressor service");
  cmd->add_option("file", args->file, "UTF-8 text file, or - for stdin")->required();
  cmd->add_option("--pruner", args->pruner,
                  "streaming_llm (default) | h2o | tova | conv | snapkv | roco | random | "
                  "chunk_prefix | local_window | no_compress");
  cmd->add_option("--memory-type", args->memory_type,
                  "FM (default) | IM | IMDC | FIXED_INCREMENTAL | DOUBLE_COMPRESS");
  cmd->add_option("--memory", args->memory_size, "M: memory budget per kv head (default 256)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--chunk", args->chunk_size, "C: tokens per chunk (default 512)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--schedule", args->schedule, "IM/IMDC growth schedule (default linear)");
  cmd->add_option("--sinks", args->n_sink_tokens, "sink tokens always kept (default 4)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--position-mode", args->position_mode, "slots (default) | original");
  cmd->add_option("--score-mode", args->score_mode, "exact (default) | window");
  cmd->add_option("--score-window", args->score_window, "queries per chunk in window mode");
  cmd->add_option("--conv-kernel", args->conv_kernel_size, "conv/snapkv pooling width (odd)");
  cmd->add_option("--double-compress-size", args->double_compress_size,
                  "DOUBLE_COMPRESS: entries the model reads");
  cmd->add_option("--seed", args->seed, "seed of the random pruner");
  cmd->add_option("--kv-dtype", args->kv_dtype,
                  "bf16 (default) | f16 | f32 | int8 | int4 (KIVI quantization)");
  cmd->add_option("--kv-group-size", args->kv_group_size, "int8/int4: KIVI group size (default 64)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--base", args->base_memory_id,
                  "append: continue this memory with FILE (the config is the base's)");
  cmd->add_option("--model-name", args->model_name, "model the memory is for (default: server's)");
  cmd->add_option("--label", args->label, "free text kept with the memory (<= 256 bytes)");
  cmd->add_flag("--add-bos", args->add_bos, "prepend the tokenizer's BOS token");
  cmd->add_option("--expected-tokens", args->expected_tokens, "token count hint for IM/IMDC")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", args->json, "print the final CompressDone event as JSON");
  cmd->add_flag("-q,--quiet", args->quiet, "no progress bar; print only the memory id");
  AddServiceFlags(cmd, "compressor", kDefaultCompressorAddress, 0, &args->service);
  return cmd;
}

int RunCompress(const CompressArgs& args) {
  std::unique_ptr<std::ifstream> file;
  std::istream* in = &std::cin;
  if (args.file != "-") {
    file = std::make_unique<std::ifstream>(args.file, std::ios::binary);
    if (!*file) {
      return ReportServiceError("compress",
                                absl::NotFoundError(absl::StrCat("cannot read ", args.file)));
    }
    in = file.get();
  }
  auto channel = MakeChannel(args.service);
  if (!channel.ok()) return ReportServiceError("compress", channel.status());
  auto stub = v1::Compressor::NewStub(*channel);
  grpc::ClientContext context;
  if (absl::Status s = PrepareContext(args.service, &context); !s.ok()) {
    return ReportServiceError("compress", s);
  }
  auto stream = stub->Compress(&context);

  // The writer thread uploads while this thread reads events: the server starts compressing
  // (and reporting progress) before the upload ends, and answers a full queue at once.
  std::atomic<int64_t> bytes_sent{0};
  std::atomic<bool> write_failed{false};
  std::thread writer([&] {
    v1::CompressRequest request;
    *request.mutable_start() = MakeStart(args);
    if (!stream->Write(request)) {
      write_failed = true;
      return;
    }
    std::string piece(kPieceBytes, '\0');
    while (*in) {
      in->read(piece.data(), static_cast<std::streamsize>(piece.size()));
      std::streamsize n = in->gcount();
      if (n <= 0) break;
      request.set_text(piece.data(), static_cast<size_t>(n));
      if (!stream->Write(request)) {
        write_failed = true;  // the server ended the call; Finish() says why
        return;
      }
      bytes_sent += n;
    }
    stream->WritesDone();
  });

  ProgressBar bar(!args.quiet);
  v1::CompressEvent event;
  v1::CompressDone done;
  bool have_done = false;
  while (stream->Read(&event)) {
    switch (event.event_case()) {
      case v1::CompressEvent::kAccepted:
        bar.Message(absl::StrCat("accepted: request ", event.accepted().request_id(),
                                 ", queue depth ", event.accepted().queue_depth()));
        break;
      case v1::CompressEvent::kProgress:
        bar.Update(event.progress(), false);
        break;
      case v1::CompressEvent::kDone:
        done = event.done();
        have_done = true;
        break;
      default:
        break;
    }
  }
  bar.End();
  writer.join();
  grpc::Status status = stream->Finish();
  if (!status.ok()) return ReportRpcError("compress", status);
  if (in->bad()) {
    return ReportServiceError("compress",
                              absl::DataLossError(absl::StrCat("error reading ", args.file)));
  }
  if (!have_done) {
    return ReportServiceError(
        "compress", absl::InternalError("the server ended the call without a done event"));
  }
  PrintDone(done, args);
  return 0;
}

}  // namespace ctxmem::cli
