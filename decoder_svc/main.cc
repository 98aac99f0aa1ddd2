// decoder_svc: answers questions from sealed memories (DESIGN.md). Wiring only: options,
// model, blob cache + fetcher, auth, TLS, metrics, the work queue and the gRPC server.
// Options and the ready line follow the service contract (docs/decoder.md).

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/blob/blob_cache.h"
#include "common/blob/s3_blob_store.h"
#include "common/compress/memory_codec.h"
#include "common/model/model.h"
#include "common/model/serving_options.h"
#include "common/service/blob_fetcher.h"
#include "common/service/decode_batcher.h"
#include "common/service/decoder_metrics.h"
#include "common/service/decoder_request.h"
#include "common/service/memory_loader.h"
#include "common/service/metrics_endpoint.h"
#include "common/service/server_flags.h"
#include "common/service/server_runner.h"
#include "common/service/service_log.h"
#include "common/service/store_flags.h"
#include "common/service/tenant_stream_limiter.h"
#include "common/service/tls_credentials.h"
#include "common/service/token_auth.h"
#include "common/service/work_queue.h"
#include "common/status.h"
#include "decoder_svc/decoder_service.h"
#include "decoder_svc/openai_http_server.h"

namespace ctxmem::decoder {
namespace {

// The shared server options (service::ServerFlags) plus the decoder's own.
struct Flags : service::ServerFlags {
  std::vector<std::string> compressors;
  bool compressor_tls = false;
  std::string compressor_ca, compressor_cert, compressor_key, compressor_server_name;
  std::string cache_dir = "./ctxmem-decoder-cache";
  uint64_t cache_ram_bytes = uint64_t{1} << 30;
  uint64_t cache_disk_bytes = uint64_t{10} << 30;
  service::StoreFlags store;  // --store-url s3://...: read blobs from the bucket
  int workers = 2;
  int64_t queue_depth = 16;
  service::DecodeBatcherOptions batch;         // --max-batch, --max-queued
  std::string decode = model::kServingDecode;  // model::ModelOptions::decode
  int64_t max_new_tokens = 1024;
  int64_t max_prompt_tokens = 8192;
  std::string http_listen;  // OpenAI-compatible HTTP HOST:PORT; "" = off
  int http_threads = 16;
};

// "host:port" -> "host" (brackets of IPv6 kept).
std::string HostOf(const std::string& address) {
  const size_t colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

int Fail(const absl::Status& status) {
  service::Log(service::LogLevel::kCritical, absl::StrCat("decoder_svc: ", status.ToString()));
  return 1;
}

int Run(const Flags& flags) {
  if (absl::Status s = service::InitServiceLog("decoder_svc", flags.log_level); !s.ok()) {
    return Fail(s);
  }

  for (const std::string& address : {flags.listen, flags.http_listen}) {
    if (address.empty()) continue;
    if (absl::Status s = service::CheckAuthPolicy(address, !flags.tokens_file.empty(),
                                                  flags.allow_insecure_remote);
        !s.ok()) {
      return Fail(s);
    }
  }
  service::TokenAuth auth = service::TokenAuth::Disabled();
  if (!flags.tokens_file.empty()) {
    absl::StatusOr<service::TokenAuth> loaded = service::TokenAuth::LoadFile(flags.tokens_file);
    if (!loaded.ok()) return Fail(loaded.status());
    auth = *std::move(loaded);
  }
  service::ServerTlsOptions server_tls{flags.tls_cert, flags.tls_key, flags.tls_client_ca};
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      service::MakeServerCredentials(server_tls);
  if (!credentials.ok()) return Fail(credentials.status());
  service::DecoderLimits limits;
  limits.max_new_tokens = flags.max_new_tokens;
  limits.max_prompt_tokens = flags.max_prompt_tokens;
  if (absl::Status s = limits.Validate(); !s.ok()) return Fail(s);
  service::WorkQueueOptions queue_options;
  queue_options.name = "decoder";
  queue_options.n_workers = flags.workers;
  queue_options.max_pending = flags.queue_depth;
  if (absl::Status s = queue_options.Validate(); !s.ok()) return Fail(s);
  if (absl::Status s = flags.batch.Validate(); !s.ok()) return Fail(s);

  model::ModelOptions model_options;
  model_options.device = flags.device;
  model_options.dtype = flags.dtype;
  model_options.decode = flags.decode;
  model_options.n_threads = flags.threads;
  {
    absl::StatusOr<c10::Device> device = model::ParseDevice(flags.device);
    absl::StatusOr<c10::ScalarType> dtype =
        device.ok() ? model::ResolveDtype(flags.dtype, *device) : device.status();
    service::LogInfo(absl::StrCat("loading model ", flags.model, " on ", flags.device, ", --dtype ",
                                  flags.dtype,
                                  dtype.ok() ? absl::StrCat(" = ", c10::toString(*dtype)) : ""));
  }
  absl::StatusOr<std::unique_ptr<model::Model>> model =
      model::Model::Load(flags.model, model_options);
  if (!model.ok()) return Fail(model.status());
  if ((*model)->tokenizer() == nullptr) {
    return Fail(absl::FailedPreconditionError(
        absl::StrCat(flags.model, " has no tokenizer; the decoder needs one")));
  }
  absl::StatusOr<compress::ModelIdentity> identity =
      compress::ComputeModelIdentity(**model, flags.model_name);
  if (!identity.ok()) return Fail(identity.status());
  service::LogInfo(absl::StrCat("model ", identity->model_name, " fingerprint ",
                                identity->model_fingerprint, " tokenizer ",
                                identity->tokenizer_fingerprint));
  blob::BlobExpectations expect{identity->model_fingerprint, identity->tokenizer_fingerprint};

  blob::BlobCacheOptions cache_options;
  cache_options.dir = flags.cache_dir;
  cache_options.ram_max_bytes = flags.cache_ram_bytes;
  cache_options.disk_max_bytes = flags.cache_disk_bytes;
  cache_options.expect = expect;
  absl::StatusOr<std::unique_ptr<blob::BlobCache>> cache = blob::BlobCache::Open(cache_options);
  if (!cache.ok()) return Fail(cache.status());

  absl::StatusOr<std::unique_ptr<service::MetricsEndpoint>> endpoint =
      service::MetricsEndpoint::Start(flags.metrics_listen);
  if (!endpoint.ok()) return Fail(endpoint.status());
  service::DecoderMetrics metrics((*endpoint)->registry());

  // With --store-url the blobs come from the bucket; compressors (if given) are not asked.
  std::unique_ptr<blob::S3BlobStore> store;
  if (flags.store.s3()) {
    absl::StatusOr<blob::S3BlobStoreOptions> store_options =
        service::S3StoreOptionsFromFlags(flags.store, flags.cache_dir + "/s3-staging", std::getenv);
    if (!store_options.ok()) return Fail(store_options.status());
    store_options->client.observer = metrics.s3();  // the metrics outlive the store
    absl::StatusOr<std::unique_ptr<blob::S3BlobStore>> opened =
        blob::S3BlobStore::Open(*store_options);
    if (!opened.ok()) return Fail(opened.status());
    store = *std::move(opened);
    service::LogInfo(absl::StrCat("blobs from ", store->url(), " at ", store->client().Describe()));
  } else if (flags.compressors.empty()) {
    return Fail(absl::InvalidArgumentError("give --compressor (repeatable) or --store-url"));
  }
  service::BlobFetcherOptions fetcher_options;
  fetcher_options.addresses = flags.compressors;
  fetcher_options.tls.enabled = flags.compressor_tls || !flags.compressor_ca.empty();
  fetcher_options.tls.ca_file = flags.compressor_ca;
  fetcher_options.tls.cert_file = flags.compressor_cert;
  fetcher_options.tls.key_file = flags.compressor_key;
  fetcher_options.tls.server_name = flags.compressor_server_name;
  fetcher_options.expect = expect;
  std::unique_ptr<service::BlobFetcher> fetcher;
  if (!flags.compressors.empty()) {
    absl::StatusOr<std::unique_ptr<service::BlobFetcher>> created =
        service::BlobFetcher::Create(fetcher_options);
    if (!created.ok()) return Fail(created.status());
    fetcher = *std::move(created);
  }

  metrics.SetCacheBytes((*cache)->ram_bytes(), (*cache)->disk_bytes());

  service::MemoryLoader loader(cache->get(), fetcher.get(), model->get(), &metrics, store.get());
  service::TenantStreamLimiter limiter(flags.max_streams_per_tenant);
  service::WorkQueue queue(queue_options);
  absl::StatusOr<std::unique_ptr<service::DecodeBatcher>> batcher =
      service::DecodeBatcher::Create(model->get(), &metrics, flags.batch);
  if (!batcher.ok()) return Fail(batcher.status());
  DecoderServiceDeps deps;
  deps.model = model->get();
  deps.loader = &loader;
  deps.queue = &queue;
  deps.batcher = batcher->get();
  deps.limiter = &limiter;
  deps.auth = &auth;
  deps.endpoint = endpoint->get();
  deps.metrics = &metrics;
  deps.limits = limits;
  deps.log_content = flags.log_content;
  DecoderService service(deps);

  service::ServerRunnerOptions runner_options;
  runner_options.listen_address = flags.listen;
  runner_options.credentials = *credentials;
  runner_options.max_receive_message_bytes = static_cast<int>(flags.max_request_bytes);
  // Score responses carry a float per token; generous but bounded.
  runner_options.max_send_message_bytes =
      static_cast<int>(std::max<int64_t>(flags.max_request_bytes, 16 << 20));
  absl::StatusOr<std::unique_ptr<service::ServerRunner>> runner =
      service::ServerRunner::Start(runner_options, {&service});
  if (!runner.ok()) return Fail(runner.status());
  std::unique_ptr<OpenAiHttpServer> http;  // the second front over the same deps
  if (!flags.http_listen.empty()) {
    OpenAiHttpOptions http_options;
    http_options.listen_address = flags.http_listen;
    http_options.model_name = identity->model_name;
    http_options.max_request_bytes = flags.max_request_bytes;
    http_options.n_threads = flags.http_threads;
    http_options.tls = server_tls;
    absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> started =
        OpenAiHttpServer::Start(deps, std::move(http_options));
    if (!started.ok()) return Fail(started.status());
    http = *std::move(started);
  }

  const std::string metrics_text =
      flags.metrics_listen.empty()
          ? "off"
          : absl::StrCat(HostOf(flags.metrics_listen), ":", (*endpoint)->port());
  const std::string http_text =
      http == nullptr ? "" : absl::StrCat(" http=", HostOf(flags.http_listen), ":", http->port());
  std::printf("decoder_svc listening grpc=%s:%d metrics=%s%s\n", HostOf(flags.listen).c_str(),
              (*runner)->port(), metrics_text.c_str(), http_text.c_str());
  std::fflush(stdout);
  service::LogInfo(absl::StrFormat(
      "serving: compressors=%d workers=%d queue_depth=%d max_batch=%d "
      "max_queued=%d decode=%s auth=%s tls=%s",
      flags.compressors.size(), flags.workers, flags.queue_depth, flags.batch.max_batch,
      flags.batch.max_queued, (*model)->packed_weights() != nullptr ? "packed" : "dense",
      auth.enabled() ? "on" : "off", server_tls.enabled() ? "on" : "off"));

  (*runner)->WaitForShutdownSignal();
  service::LogInfo("shutting down: draining the work queue");
  if (http != nullptr) http->Stop();  // its handlers wait for their calls on the queue
  queue.Shutdown();
  (*batcher)->Shutdown();  // the streams the queue's jobs handed over finish here
  runner->reset();
  service::LogInfo("stopped");
  return 0;
}

}  // namespace
}  // namespace ctxmem::decoder

int main(int argc, char** argv) {
  using ctxmem::decoder::Flags;
  ctxmem::service::InitServiceLog("decoder_svc", "info").IgnoreError();
  Flags flags;
  flags.listen = "127.0.0.1:50052";
  flags.metrics_listen = "127.0.0.1:9465";
  flags.max_streams_per_tenant = 8;
  flags.dtype = ctxmem::model::kServingDtype;
  CLI::App app{"ctxmem decoder service: answers questions from memory blobs"};
  ctxmem::service::AddServerFlags(app, &flags);
  app.add_option("--compressor", flags.compressors,
                 "Compressor address; repeat for replicas (consistent hashing, fail-over); "
                 "not needed with --store-url (blobs are read from the bucket)");
  ctxmem::service::AddStoreFlags(app, &flags.store);
  app.add_flag("--compressor-tls", flags.compressor_tls, "Use TLS to the compressors");
  app.add_option("--compressor-ca", flags.compressor_ca, "PEM roots for the compressors' certs");
  app.add_option("--compressor-cert", flags.compressor_cert, "Client cert for mTLS to compressors");
  app.add_option("--compressor-key", flags.compressor_key, "Its key");
  app.add_option("--compressor-server-name", flags.compressor_server_name,
                 "Name checked against the compressors' certs");
  app.add_option("--cache-dir", flags.cache_dir, "On-disk blob cache")->capture_default_str();
  app.add_option("--cache-ram-bytes", flags.cache_ram_bytes, "RAM cache budget")
      ->capture_default_str();
  app.add_option("--cache-disk-bytes", flags.cache_disk_bytes, "Disk cache budget")
      ->capture_default_str();
  app.add_option("--workers", flags.workers, "Generation workers")->capture_default_str();
  app.add_option("--queue-depth", flags.queue_depth, "Jobs waiting beyond the running ones")
      ->capture_default_str();
  app.add_option("--max-batch", flags.batch.max_batch,
                 "Generate streams decoded together in one model step (1 = one at a time)")
      ->capture_default_str();
  app.add_option("--max-queued", flags.batch.max_queued,
                 "Generate streams waiting for a batch slot; more get RESOURCE_EXHAUSTED")
      ->capture_default_str();
  app.add_option("--step-prompt-rows", flags.batch.step_prompt_rows,
                 "Prompt tokens joining streams may add to one packed decode step as rows "
                 "(0 = prefill every prompt on its own; longer prompts always are)")
      ->capture_default_str();
  app.add_option("--decode", flags.decode,
                 "Decode steps: auto (packed where the model has them), packed (the GGUF "
                 "blocks, CPU), dense (fp32/bf16 weights; the reference)")
      ->check(CLI::IsMember({"dense", "packed", "auto"}))
      ->capture_default_str();
  app.add_option("--max-new-tokens", flags.max_new_tokens, "Largest max_tokens a request may ask")
      ->capture_default_str();
  app.add_option("--max-prompt-tokens", flags.max_prompt_tokens, "Largest prompt in tokens")
      ->capture_default_str();
  app.add_option("--http-listen", flags.http_listen,
                 "OpenAI-compatible HTTP API (docs/http_api.md) on HOST:PORT; off by default");
  app.add_option("--http-threads", flags.http_threads,
                 "HTTP connections served at once (an idle keep-alive one holds a thread)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  CLI11_PARSE(app, argc, argv);
  if (absl::Status s = flags.Validate(); !s.ok()) {
    std::fprintf(stderr, "decoder_svc: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  return ctxmem::decoder::Run(flags);
}
