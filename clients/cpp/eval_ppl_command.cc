#include "clients/cpp/eval_ppl_command.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clients/cpp/plot_runner.h"
#include "common/eval/ppl_sweep.h"
#include "common/status.h"
#include "common/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace ctxmem::cli {
namespace {

// One stderr line, redrawn in place: [#####.....] setting 3/29 tova IMDC C=512 M=128 1024/2048
void DrawProgress(const eval::PplSweepProgress& p) {
  constexpr int kWidth = 30;
  const double fraction =
      (static_cast<double>(p.setting) +
       (p.n_tokens_total > 0 ? static_cast<double>(p.n_tokens_done) / p.n_tokens_total : 0)) /
      static_cast<double>(p.n_settings);
  const int filled = static_cast<int>(fraction * kWidth);
  const compress::CompressionConfig& c = *p.config;
  std::fprintf(
      stderr, "\r[%s%s] %lld/%lld %s %s C=%lld M=%lld %lld/%lld tok %.0f s      ",
      std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(),
      static_cast<long long>(p.setting + 1), static_cast<long long>(p.n_settings), c.pruner.c_str(),
      std::string(compress::MemoryTypeName(c.memory_type, c.decremental_chunk)).c_str(),
      static_cast<long long>(c.chunk_size), static_cast<long long>(c.memory_size),
      static_cast<long long>(p.n_tokens_done), static_cast<long long>(p.n_tokens_total), p.seconds);
  if (p.finished != nullptr) {
    const eval::PplRow& row = *p.finished;
    if (row.error.empty()) {
      std::fprintf(stderr, "\n  ppl %.4f  kl %s  %.1f s  peak RSS %.0f MiB\n", row.ppl,
                   row.has_kl ? absl::StrFormat("%.4f", row.kl).c_str() : "-", row.seconds,
                   static_cast<double>(row.peak_rss_bytes) / (1 << 20));
    } else {
      std::fprintf(stderr, "\n  skipped: %s\n", row.error.c_str());
    }
  }
}

// The machine a table was measured on: CPU model, cores, load average at the start.
nlohmann::json MachineJson(int threads) {
  nlohmann::json m;
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      m["cpu"] = line.substr(line.find(':') + 2);
      break;
    }
  }
  m["nproc"] = std::thread::hardware_concurrency();
  m["threads"] = threads;
  std::ifstream loadavg("/proc/loadavg");
  std::string a, b, c;
  if (loadavg >> a >> b >> c) m["load_average_at_start"] = absl::StrCat(a, " ", b, " ", c);
  return m;
}

// Rows of an earlier run in `path` to resume from; null when there is none. FailedPrecondition
// when it was made with another text, model, dtype or eval length (resuming would mix tables).
absl::StatusOr<nlohmann::json> PreviousRows(const std::string& path, const nlohmann::json& expect) {
  std::ifstream in(path);
  if (!in) return nlohmann::json();
  std::stringstream buffer;
  buffer << in.rdbuf();
  nlohmann::json previous =
      nlohmann::json::parse(buffer.str(), nullptr, /*allow_exceptions=*/false);
  if (previous.is_discarded() || !previous.is_object() || !previous.contains("rows")) {
    return absl::FailedPreconditionError(absl::StrCat(
        path,
        " exists but is not an eval-ppl table; move it away, pick another --name, or pass "
        "--restart to overwrite it"));
  }
  for (const auto& [key, value] : expect.items()) {
    if (previous.value(key, nlohmann::json()) != value) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " was made with ", key, "=",
                       previous.value(key, nlohmann::json()).dump(), ", this run has ",
                       value.dump(), "; pick another --name, or pass --restart to overwrite it"));
    }
  }
  return previous["rows"];
}

}  // namespace

CLI::App* AddEvalPplCommand(CLI::App* app, EvalPplArgs* args) {
  CLI::App* cmd = app->add_subcommand(
      "eval-ppl", "Perplexity of chunked compression over pruners x memory types x C x M");
  AddModelFlags(cmd, &args->model);
  AddCompressionFlags(cmd, &args->compression);
  cmd->add_option("--text", args->text_path, "UTF-8 text file")->required();
  cmd->add_option("--eval-len", args->eval_len, "Tokens of the evaluation window")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 40))
      ->capture_default_str();
  cmd->add_option("--chunk", args->chunk_sizes, "Chunk size(s) C, comma-separated")
      ->capture_default_str();
  cmd->add_option("--memory", args->memory_sizes, "Memory size(s) M, comma-separated")
      ->capture_default_str();
  cmd->add_option("--pruners", args->pruners, "all | comma-separated pruner names")
      ->capture_default_str();
  cmd->add_option("--memory-types", args->memory_types, "Comma-separated: FM,IM,IMDC,...")
      ->capture_default_str();
  cmd->add_option("--out", args->out_dir, "Output folder")->required();
  cmd->add_option("--name", args->name, "Output file stem: DIR/NAME.{json,md,png}")
      ->capture_default_str();
  cmd->add_option("--python", args->python, "Python with matplotlib for the plot")
      ->envname("CTXMEM_PYTHON")
      ->capture_default_str();
  cmd->add_flag("--no-plot", args->no_plot, "Write JSON and markdown only");
  cmd->add_flag("--no-kl", args->no_kl,
                "Skip the KL to no_compress's next-token distribution (keeps eval-len x vocab "
                "floats)");
  cmd->add_flag("--restart", args->restart,
                "Ignore an existing DIR/NAME.json instead of resuming the settings it holds");
  return cmd;
}

int RunEvalPpl(const EvalPplArgs& args) {
  const std::string kCommand = "eval-ppl";
  eval::PplSweepOptions options;
  options.eval_len = args.eval_len;
  options.kl = !args.no_kl;
  absl::StatusOr<compress::CompressionConfig> base = BaseConfig(args.compression);
  if (!base.ok()) return ReportError(kCommand, base.status());
  options.base = *base;
  absl::StatusOr<std::vector<int64_t>> chunks = ParseCounts(args.chunk_sizes);
  if (!chunks.ok()) return ReportError(kCommand, chunks.status());
  absl::StatusOr<std::vector<int64_t>> memories = ParseCounts(args.memory_sizes);
  if (!memories.ok()) return ReportError(kCommand, memories.status());
  options.chunk_sizes = *chunks;
  options.memory_sizes = *memories;
  if (args.pruners != "all") options.pruners = SplitList(args.pruners);
  options.memory_types = SplitList(args.memory_types);
  absl::StatusOr<std::vector<compress::CompressionConfig>> plan = PlanPplSweep(options);
  if (!plan.ok()) return ReportError(kCommand, plan.status());
  if (absl::Status s = MakeOutputDir(args.out_dir); !s.ok()) return ReportError(kCommand, s);

  absl::StatusOr<ModelAndText> loaded = LoadModelAndText(args.model, args.text_path);
  if (!loaded.ok()) return ReportError(kCommand, loaded.status());
  const std::unique_ptr<model::Model>& model = loaded->model;
  std::vector<int32_t>* ids = &loaded->ids;
  std::fprintf(stderr, "%s: %zu tokens, evaluating the first %lld; %zu settings\n",
               args.text_path.c_str(), ids->size(), static_cast<long long>(args.eval_len),
               plan->size());

  // What must match for a resume: the same tokens (text, model) and numbers (dtype, eval-len).
  nlohmann::json identity;
  identity["text"] = args.text_path;
  identity["model"] = model->path();
  identity["device"] = args.model.device;
  identity["dtype"] = args.model.dtype;
  identity["eval_len"] = args.eval_len;
  const std::string stem = args.out_dir + "/" + args.name;
  if (!args.restart) {
    absl::StatusOr<nlohmann::json> previous = PreviousRows(stem + ".json", identity);
    if (!previous.ok()) return ReportError(kCommand, previous.status());
    options.previous_rows = *std::move(previous);
    if (!options.previous_rows.is_null()) {
      std::fprintf(stderr, "resuming %s.json (%zu rows there)\n", stem.c_str(),
                   options.previous_rows.size());
    }
  }
  const nlohmann::json machine = MachineJson(args.model.n_threads);

  // Writes the table as it stands (pending settings marked); called after every setting.
  auto write = [&](const eval::PplSweepResult& table) -> absl::Status {
    nlohmann::json json = eval::PplSweepToJson(table);
    for (const auto& [key, value] : identity.items()) json[key] = value;
    json["machine"] = machine;
    std::string md = eval::PplSweepToMarkdown(table);
    md = absl::StrCat("Model `", model->path(), "`, ", args.model.device, " ", args.model.dtype,
                      ", ", args.model.n_threads, " thread(s); text `", args.text_path,
                      "`. Machine: ", machine.value("cpu", std::string("?")), ", nproc ",
                      machine.value("nproc", 0), ", load average at start ",
                      machine.value("load_average_at_start", std::string("?")), ".\n\n", md);
    CTXMEM_RETURN_IF_ERROR(WriteFileAtomically(stem + ".json", json.dump(1) + "\n"));
    return WriteFileAtomically(stem + ".md", md);
  };
  absl::Status write_status;
  auto progress = [&](const eval::PplSweepProgress& p) {
    if (p.finished == nullptr || !p.finished->resumed) DrawProgress(p);
    if (p.table != nullptr && write_status.ok()) write_status = write(*p.table);
  };
  absl::StatusOr<eval::PplSweepResult> result =
      eval::RunPplSweep(model->transformer(), *ids, options, progress);
  std::fprintf(stderr, "\n");
  if (!result.ok()) return ReportError(kCommand, result.status());
  if (!write_status.ok()) return ReportError(kCommand, write_status);
  if (absl::Status s = write(*result); !s.ok()) return ReportError(kCommand, s);
  std::printf("%s\nwrote %s.json and %s.md (%.0f s)\n", eval::PplSweepToMarkdown(*result).c_str(),
              stem.c_str(), stem.c_str(), result->seconds);
  if (!args.no_plot) {
    DrawPlotOrWarn("eval-ppl", args.python, "plot_eval_ppl.py",
                   {stem + ".json", "--out", stem + ".png"}, stem + ".json is");
  }
  return 0;
}

}  // namespace ctxmem::cli
