#include "common/service/server_flags.h"

#include <absl/strings/str_cat.h>

#include <cstdlib>

namespace ctxmem::service {

absl::Status ServerFlags::Validate() const {
  if (threads < 1)
    return absl::InvalidArgumentError(absl::StrCat("--threads=", threads, " must be >= 1"));
  if (dtype != "auto" && dtype != "fp32" && dtype != "bf16" && dtype != "fp16") {
    return absl::InvalidArgumentError(
        absl::StrCat("--dtype=", dtype, " is not known; valid: auto, fp32, bf16, fp16"));
  }
  if (max_request_bytes < 1024 || max_request_bytes > (int64_t{1} << 31) - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-request-bytes=", max_request_bytes, " must be in [1024, 2^31)"));
  }
  if (max_streams_per_tenant < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-streams-per-tenant=", max_streams_per_tenant, " must be >= 1"));
  }
  if (model.empty()) {
    return absl::InvalidArgumentError("no model: pass --model or set CTXMEM_MODEL");
  }
  return absl::OkStatus();
}

void AddServerFlags(CLI::App& app, ServerFlags* flags) {
  if (const char* env = std::getenv("CTXMEM_MODEL"); env != nullptr && *env != '\0') {
    flags->model = env;
  }
  app.add_option("--listen", flags->listen, "gRPC address HOST:PORT (port 0 = any free port)")
      ->capture_default_str();
  app.add_option("--metrics-listen", flags->metrics_listen,
                 "Prometheus /metrics address (\"\" = off, port 0 = any)")
      ->capture_default_str();
  app.add_option("--model", flags->model,
                 "GGUF file or HF checkpoint folder (default $CTXMEM_MODEL)");
  app.add_option("--model-name", flags->model_name, "name clients use for the model")
      ->capture_default_str();
  app.add_option("--device", flags->device, "cpu | cuda | cuda:N")->capture_default_str();
  app.add_option("--dtype", flags->dtype,
                 "auto | fp32 | bf16 | fp16: storage of the weight matrices for prefill and "
                 "compression (activations, norms, softmax and keys/values stay fp32; auto: "
                 "bf16 on CUDA and on CPUs with AVX512_BF16, else fp32)")
      ->capture_default_str();
  app.add_option("--threads", flags->threads, "torch intra-op threads")->capture_default_str();
  app.add_option("--max-request-bytes", flags->max_request_bytes, "largest gRPC request message")
      ->capture_default_str();
  app.add_option("--max-streams-per-tenant", flags->max_streams_per_tenant,
                 "concurrent streams one tenant may hold open")
      ->capture_default_str();
  app.add_option("--tokens-file", flags->tokens_file, "\"<token> <tenant>\" lines; enables auth");
  app.add_flag("--allow-insecure-remote", flags->allow_insecure_remote,
               "allow a non-loopback listen address without --tokens-file");
  app.add_option("--tls-cert", flags->tls_cert, "PEM server certificate chain");
  app.add_option("--tls-key", flags->tls_key, "PEM server private key");
  app.add_option("--tls-client-ca", flags->tls_client_ca,
                 "PEM CA: require and verify client certificates (mTLS)");
  app.add_option("--log-level", flags->log_level, "trace|debug|info|warn|error|critical|off")
      ->capture_default_str();
  app.add_flag("--log-content", flags->log_content,
               "log context / prompt text previews (off by default)");
}

}  // namespace ctxmem::service
