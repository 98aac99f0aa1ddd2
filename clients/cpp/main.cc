// The `ctxmem` command-line tool: `ctxmem generate ...`, `ctxmem ppl ...`, `ctxmem probe ...`,
// `ctxmem eval-ppl ...`, `ctxmem eval-passkey ...`.

#include "CLI/CLI.hpp"
#include "clients/cpp/eval_passkey_command.h"
#include "clients/cpp/eval_ppl_command.h"
#include "clients/cpp/generate_command.h"
#include "clients/cpp/ppl_command.h"
#include "clients/cpp/probe_command.h"

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
  return 1;
}
