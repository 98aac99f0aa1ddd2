// compressor_svc: turns long contexts into sealed memory blobs over gRPC (service contract:
// docs/services.md). Flags are the only configuration; the ready line on stdout names the
// bound ports; SIGTERM/SIGINT drain and exit 0.

#include <absl/strings/str_format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common/blob/file_blob_store.h"
#include "common/blob/s3_blob_store.h"
#include "common/compress/memory_codec.h"
#include "common/learned/learned_method.h"
#include "common/model/model.h"
#include "common/model/serving_options.h"
#include "common/service/compressor_metrics.h"
#include "common/service/metrics_endpoint.h"
#include "common/service/server_flags.h"
#include "common/service/server_runner.h"
#include "common/service/service_log.h"
#include "common/service/store_flags.h"
#include "common/service/tls_credentials.h"
#include "common/service/token_auth.h"
#include "compressor_svc/compressor_service.h"

namespace {

using namespace ctxmem;

// The shared server options (service::ServerFlags) plus the compressor's own.
struct Flags : service::ServerFlags {
  std::string store_dir = "./ctxmem-store";
  uint64_t store_max_bytes = uint64_t{10} << 30;
  int64_t workers = 1;
  int64_t queue_depth = 4;
  int64_t max_context_tokens = 131072;
  service::StoreFlags store;         // --store-url s3://... replaces the directory store
  std::vector<std::string> learned;  // NAME=FILE (common/learned/learned_method.h)
};

// The directory store, or the shared S3 bucket when --store-url is given (sealing into
// <store-dir>/staging), its S3 client reporting to `observer`.
absl::StatusOr<std::unique_ptr<blob::BlobStore>> OpenStore(const Flags& f,
                                                           blob::S3Observer* observer) {
  if (f.store.s3()) {
    absl::StatusOr<blob::S3BlobStoreOptions> options =
        service::S3StoreOptionsFromFlags(f.store, f.store_dir + "/staging", std::getenv);
    if (!options.ok()) return options.status();
    options->client.observer = observer;
    absl::StatusOr<std::unique_ptr<blob::S3BlobStore>> store = blob::S3BlobStore::Open(*options);
    if (!store.ok()) return store.status();
    service::LogInfo(absl::StrFormat("store %s endpoint=%s region=%s staging=%s", (*store)->url(),
                                     (*store)->client().Describe(), f.store.s3_region,
                                     (*store)->staging_dir()));
    return std::unique_ptr<blob::BlobStore>(*std::move(store));
  }
  blob::FileBlobStoreOptions store_options;
  store_options.dir = f.store_dir;
  store_options.max_bytes = f.store_max_bytes;
  absl::StatusOr<std::unique_ptr<blob::FileBlobStore>> store =
      blob::FileBlobStore::Open(store_options);
  if (!store.ok()) return store.status();
  service::LogInfo(absl::StrFormat("store dir=%s blobs=%d bytes=%d max_bytes=%d", f.store_dir,
                                   (*store)->n_blobs(), (*store)->total_bytes(),
                                   f.store_max_bytes));
  return std::unique_ptr<blob::BlobStore>(*std::move(store));
}

// "HOST:PORT" with the bound port (the flag may say port 0).
std::string WithPort(const std::string& address, int port) {
  const size_t colon = address.rfind(':');
  return (colon == std::string::npos ? address : address.substr(0, colon)) + ":" +
         std::to_string(port);
}

int Fail(const std::string& what, const absl::Status& status) {
  service::LogError(absl::StrFormat("%s: %s", what, status.ToString()));
  return 1;
}

int Run(const Flags& f) {
  if (absl::Status s = f.Validate(); !s.ok()) {
    service::LogError(std::string(s.message()));
    return 2;
  }
  if (f.workers < 1 || f.queue_depth < 0 || f.max_context_tokens < 1) {
    service::LogError(absl::StrFormat(
        "bad limits: --workers >= 1, --queue-depth >= 0, --max-context-tokens >= 1"));
    return 2;
  }
  service::TokenAuth auth = service::TokenAuth::Disabled();
  if (!f.tokens_file.empty()) {
    absl::StatusOr<service::TokenAuth> loaded = service::TokenAuth::LoadFile(f.tokens_file);
    if (!loaded.ok()) return Fail("--tokens-file", loaded.status());
    auth = *std::move(loaded);
  }
  if (absl::Status s = service::CheckAuthPolicy(f.listen, auth.enabled(), f.allow_insecure_remote);
      !s.ok()) {
    return Fail("--listen", s);
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      service::MakeServerCredentials({f.tls_cert, f.tls_key, f.tls_client_ca});
  if (!credentials.ok()) return Fail("TLS", credentials.status());

  for (const std::string& spec : f.learned) {
    if (absl::Status s = learned::RegisterLearnedSpec(spec); !s.ok()) return Fail("--learned", s);
    service::LogInfo("learned method registered: " + spec);
  }

  model::ModelOptions model_options;
  model_options.device = f.device;
  model_options.dtype = f.dtype;
  model_options.n_threads = f.threads;
  absl::StatusOr<std::unique_ptr<model::Model>> model = model::Model::Load(f.model, model_options);
  if (!model.ok()) return Fail("--model " + f.model, model.status());
  absl::StatusOr<compress::ModelIdentity> identity =
      compress::ComputeModelIdentity(**model, f.model_name);
  if (!identity.ok()) return Fail("model fingerprint", identity.status());
  service::LogInfo(absl::StrFormat("model name=%s path=%s fingerprint=%s tokenizer=%s",
                                   f.model_name, f.model, identity->model_fingerprint,
                                   identity->tokenizer_fingerprint));

  absl::StatusOr<std::unique_ptr<service::MetricsEndpoint>> endpoint =
      service::MetricsEndpoint::Start(f.metrics_listen);
  if (!endpoint.ok()) return Fail("--metrics-listen", endpoint.status());
  service::CompressorMetrics metrics((*endpoint)->registry());

  // After the metrics, which the S3 client reports to (and which outlive it).
  absl::StatusOr<std::unique_ptr<blob::BlobStore>> store = OpenStore(f, metrics.s3());
  if (!store.ok()) {
    return Fail(f.store.s3() ? "--store-url " + f.store.store_url : "--store-dir " + f.store_dir,
                store.status());
  }

  service::CompressJobEnv env;
  env.model = model->get();
  env.identity = *identity;
  env.store = store->get();
  env.metrics = &metrics;
  env.config_limits.model_name = f.model_name;
  env.config_limits.max_positions = (*model)->config().max_positions;
  env.max_context_tokens = f.max_context_tokens;
  env.max_text_bytes = f.max_context_tokens * 16;
  compressor_svc::CompressorServiceOptions options;
  options.n_workers = f.workers;
  options.queue_depth = f.queue_depth;
  options.max_streams_per_tenant = f.max_streams_per_tenant;
  options.log_content = f.log_content;
  compressor_svc::CompressorService compressor(env, &auth, endpoint->get(), &metrics, options);

  service::ServerRunnerOptions runner_options;
  runner_options.listen_address = f.listen;
  runner_options.credentials = *credentials;
  runner_options.max_receive_message_bytes = static_cast<int>(f.max_request_bytes);
  runner_options.max_send_message_bytes = 4 << 20;  // blob chunks are <= 1 MiB
  absl::StatusOr<std::unique_ptr<service::ServerRunner>> runner =
      service::ServerRunner::Start(runner_options, {&compressor});
  if (!runner.ok()) return Fail("--listen", runner.status());

  const std::string metrics_address =
      f.metrics_listen.empty() ? "off" : WithPort(f.metrics_listen, (*endpoint)->port());
  std::printf("compressor_svc listening grpc=%s metrics=%s\n",
              WithPort(f.listen, (*runner)->port()).c_str(), metrics_address.c_str());
  std::fflush(stdout);
  service::LogInfo(absl::StrFormat(
      "ready grpc=%s metrics=%s auth=%s tls=%s workers=%d queue_depth=%d",
      WithPort(f.listen, (*runner)->port()), metrics_address, auth.enabled() ? "tokens" : "off",
      f.tls_cert.empty() ? "off" : "on", f.workers, f.queue_depth));

  (*runner)->WaitForShutdownSignal();
  service::LogInfo("shutting down: draining work queues");
  compressor.Shutdown();
  runner->reset();
  service::LogInfo("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  f.listen = "127.0.0.1:50051";
  f.metrics_listen = "127.0.0.1:9464";
  f.max_streams_per_tenant = 4;
  f.dtype = model::kServingDtype;
  CLI::App app{"ctxmem compressor service: long contexts in, sealed memory blobs out"};
  service::AddServerFlags(app, &f);
  app.add_option("--store-dir", f.store_dir,
                 "blob store directory (with --store-url: only its staging/ for sealing)")
      ->capture_default_str();
  app.add_option("--store-max-bytes", f.store_max_bytes, "blob store budget in bytes (LRU)")
      ->capture_default_str();
  app.add_option("--workers", f.workers, "compressions running at once")->capture_default_str();
  app.add_option("--queue-depth", f.queue_depth, "admitted jobs waiting beyond the running ones")
      ->capture_default_str();
  app.add_option("--max-context-tokens", f.max_context_tokens, "largest context, tokens")
      ->capture_default_str();
  service::AddStoreFlags(app, &f.store);
  app.add_option("--learned", f.learned,
                 "NAME=FILE: trained weights clients select as pruner NAME (repeatable)");
  CLI11_PARSE(app, argc, argv);
  if (absl::Status s = service::InitServiceLog("compressor_svc", f.log_level); !s.ok()) {
    std::fprintf(stderr, "--log-level: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  return Run(f);
}
