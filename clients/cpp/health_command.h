#pragma once
// `ctxmem health --server ADDR`: grpc.health.v1.Health/Check against a ctxmem server (plaintext
// or TLS). Exit 0 when SERVING, 1 otherwise; used as the Kubernetes exec probe when the servers
// run TLS (kubelet's native gRPC probe cannot speak TLS).

#include <string>

#include "CLI/CLI.hpp"
#include "clients/cpp/service_flags.h"

namespace ctxmem::cli {

struct HealthArgs {
  ServiceFlags service;
  std::string service_name;  // health service name; "" = the whole server
  bool quiet = false;
};

// Adds the `health` subcommand to `app`; `args` must outlive the parse.
CLI::App* AddHealthCommand(CLI::App* app, HealthArgs* args);

// Runs it; returns the process exit code (0 = SERVING).
int RunHealth(const HealthArgs& args);

}  // namespace ctxmem::cli
