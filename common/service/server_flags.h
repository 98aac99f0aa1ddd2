#pragma once
// ServerFlags: the command-line options every ctxmem server has (listen addresses, model,
// threads, request limits, auth, TLS, logging), registered the same way on both servers so
// their spelling, defaults and checks cannot drift apart. Each server's own Flags derive from
// it and add theirs (STYLE.md rule 35: CLI11 for every binary).
// Thread-safety: plain value type.

#include <absl/status/status.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace ctxmem::service {

struct ServerFlags {
  std::string listen;          // gRPC HOST:PORT; port 0 = any free port
  std::string metrics_listen;  // Prometheus /metrics HOST:PORT; "" = off
  std::string model;           // GGUF file or HF checkpoint folder; default $CTXMEM_MODEL
  std::string model_name = "SmolLM2-135M-Instruct";
  std::string device = "cpu";
  std::string dtype = "fp32";  // weight matrices; the servers start from model::kServingDtype
  int threads = 2;             // torch intra-op threads
  int64_t max_request_bytes = 4 << 20;  // largest gRPC request message
  int64_t max_streams_per_tenant = 4;   // concurrent streams one tenant may hold open
  std::string tokens_file;              // "<token> <tenant>" lines; set = auth on
  bool allow_insecure_remote = false;   // non-loopback listen address without auth
  std::string tls_cert, tls_key, tls_client_ca;
  std::string log_level = "info";
  bool log_content = false;  // context / prompt text in logs (off: never logged)

  // InvalidArgument naming the flag: --threads >= 1, --dtype fp32|bf16|fp16, --dtype
  // fp32|bf16|fp16, --max-request-bytes in [1024, 2^31),
  // --max-streams-per-tenant >= 1, a model given (flag or $CTXMEM_MODEL).
  absl::Status Validate() const;
};

// Registers the ServerFlags options on `app`, with the values in *flags as the shown defaults
// (set a server's own listen ports etc. before calling). *flags must outlive parsing.
// `model` starts from $CTXMEM_MODEL when that is set.
void AddServerFlags(CLI::App& app, ServerFlags* flags);

}  // namespace ctxmem::service
