#include "common/service/compressor_metrics.h"

namespace ctxmem::service {
namespace {

using prometheus::Histogram;

Histogram* MakeHistogram(prometheus::Registry& registry, const char* name, const char* help,
                         Histogram::BucketBoundaries buckets) {
  return &prometheus::BuildHistogram().Name(name).Help(help).Register(registry).Add(
      {}, std::move(buckets));
}

prometheus::Gauge* MakeGauge(prometheus::Registry& registry, const char* name, const char* help) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

}  // namespace

CompressorMetrics::CompressorMetrics(prometheus::Registry& registry) : s3_(registry) {
  tokens_ = &prometheus::BuildCounter()
                 .Name("ctxmem_compress_tokens_total")
                 .Help("Context tokens run through the model by compressions")
                 .Register(registry)
                 .Add({});
  chunk_seconds_ = MakeHistogram(registry, "ctxmem_compress_chunk_seconds",
                                 "Seconds per compressed chunk (forward + pruning)",
                                 {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  job_seconds_ = MakeHistogram(registry, "ctxmem_compress_seconds",
                               "Seconds per compression job, first message to done",
                               {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800});
  ratio_ = MakeHistogram(registry, "ctxmem_compression_ratio",
                         "Original tokens per kept memory entry of a compression",
                         {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024});
  bytes_per_token_ = MakeHistogram(registry, "ctxmem_blob_bytes_per_token",
                                   "Sealed blob bytes per original context token",
                                   {64, 256, 1024, 4096, 16384, 65536, 262144});
  queue_depth_ = MakeGauge(registry, "ctxmem_compress_queue_depth",
                           "Admitted compressions waiting (uploading or queued), not running");
  jobs_running_ =
      MakeGauge(registry, "ctxmem_compress_jobs_running", "Compressions running on a worker");
  store_bytes_ = MakeGauge(registry, "ctxmem_store_bytes", "Bytes of sealed blobs in the store");
  store_blobs_ = MakeGauge(registry, "ctxmem_store_blobs", "Sealed blobs in the store");
  store_max_bytes_ = MakeGauge(registry, "ctxmem_store_max_bytes",
                               "Byte budget of the blob store (--store-max-bytes; 0 = unlimited)");
}

void CompressorMetrics::ObserveJob(double seconds, double compression_ratio,
                                   double bytes_per_token) {
  job_seconds_->Observe(seconds);
  ratio_->Observe(compression_ratio);
  bytes_per_token_->Observe(bytes_per_token);
}

void CompressorMetrics::SetStore(uint64_t bytes, int64_t n_blobs, uint64_t max_bytes) {
  store_bytes_->Set(static_cast<double>(bytes));
  store_blobs_->Set(static_cast<double>(n_blobs));
  store_max_bytes_->Set(static_cast<double>(max_bytes));
}

}  // namespace ctxmem::service
