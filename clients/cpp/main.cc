// The `ctxmem` command-line tool: `ctxmem generate ...`, `ctxmem ppl ...`, `ctxmem probe ...`,
// `ctxmem eval-ppl ...`, `ctxmem eval-passkey ...`, `ctxmem eval-recon ...`, `ctxmem score ...`,
// `ctxmem train ...`. Service clients: `ctxmem compress`, `ask`, `ls`, `stat`, `rm`, `health`
// (service_flags.h).

#include "CLI/CLI.hpp"
#include "clients/cpp/ask_command.h"
#include "clients/cpp/compress_command.h"
#include "clients/cpp/eval_passkey_command.h"
#include "clients/cpp/eval_ppl_command.h"
#include "clients/cpp/eval_recon_command.h"
#include "clients/cpp/generate_command.h"
#include "clients/cpp/health_command.h"
#include "clients/cpp/ls_command.h"
#include "clients/cpp/ppl_command.h"
#include "clients/cpp/probe_command.h"
#include "clients/cpp/rm_command.h"
#include "clients/cpp/score_command.h"
#include "clients/cpp/stat_command.h"
#include "clients/cpp/train_command.h"

int main(int argc, char** argv) {
  CLI::App app{"ctxmem: long-context memory for LLMs (command-line tool)"};
  app.require_subcommand(1);
  ctxmem::cli::GenerateArgs generate_args;
  CLI::App* generate = ctxmem::cli::AddGenerateCommand(&app, &generate_args);
  ctxmem::cli::PplArgs ppl_args;
  CLI::App* ppl = ctxmem::cli::AddPplCommand(&app, &ppl_args);
  ctxmem::cli::ProbeArgs probe_args;
  CLI::App* probe = ctxmem::cli::AddProbeCommand(&app, &probe_args);
  ctxmem::cli::EvalPplArgs eval_ppl_args;
  CLI::App* eval_ppl = ctxmem::cli::AddEvalPplCommand(&app, &eval_ppl_args);
  ctxmem::cli::EvalPasskeyArgs eval_passkey_args;
  CLI::App* eval_passkey = ctxmem::cli::AddEvalPasskeyCommand(&app, &eval_passkey_args);
  ctxmem::cli::EvalReconArgs eval_recon_args;
  CLI::App* eval_recon = ctxmem::cli::AddEvalReconCommand(&app, &eval_recon_args);
  ctxmem::cli::ScoreArgs score_args;
  CLI::App* score = ctxmem::cli::AddScoreCommand(&app, &score_args);
  ctxmem::cli::CompressArgs compress_args;
  CLI::App* compress = ctxmem::cli::AddCompressCommand(&app, &compress_args);
  ctxmem::cli::AskArgs ask_args;
  CLI::App* ask = ctxmem::cli::AddAskCommand(&app, &ask_args);
  ctxmem::cli::LsArgs ls_args;
  CLI::App* ls = ctxmem::cli::AddLsCommand(&app, &ls_args);
  ctxmem::cli::StatArgs stat_args;
  CLI::App* stat = ctxmem::cli::AddStatCommand(&app, &stat_args);
  ctxmem::cli::RmArgs rm_args;
  CLI::App* rm = ctxmem::cli::AddRmCommand(&app, &rm_args);
  ctxmem::cli::TrainArgs train_args;
  CLI::App* train = ctxmem::cli::AddTrainCommand(&app, &train_args);
  ctxmem::cli::HealthArgs health_args;
  CLI::App* health = ctxmem::cli::AddHealthCommand(&app, &health_args);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 reports parse errors by exception; --help exits 0, every usage error exits 1.
    return app.exit(e) == 0 ? 0 : 1;
  }
  if (generate->parsed()) return ctxmem::cli::RunGenerate(generate_args);
  if (ppl->parsed()) return ctxmem::cli::RunPpl(ppl_args);
  if (probe->parsed()) return ctxmem::cli::RunProbe(probe_args);
  if (eval_ppl->parsed()) return ctxmem::cli::RunEvalPpl(eval_ppl_args);
  if (eval_passkey->parsed()) return ctxmem::cli::RunEvalPasskey(eval_passkey_args);
  if (eval_recon->parsed()) return ctxmem::cli::RunEvalRecon(eval_recon_args);
  if (score->parsed()) return ctxmem::cli::RunScore(score_args);
  if (compress->parsed()) return ctxmem::cli::RunCompress(compress_args);
  if (ask->parsed()) return ctxmem::cli::RunAsk(ask_args);
  if (ls->parsed()) return ctxmem::cli::RunLs(ls_args);
  if (stat->parsed()) return ctxmem::cli::RunStat(stat_args);
  if (rm->parsed()) return ctxmem::cli::RunRm(rm_args);
  if (health->parsed()) return ctxmem::cli::RunHealth(health_args);
  if (train->parsed()) {
    std::string command_line;
    for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
    return ctxmem::cli::RunTrain(train_args, command_line);
  }
  return 1;
}
