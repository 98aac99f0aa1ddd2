#pragma once
// CompressorMetrics: the compressor's Prometheus families (names fixed by the service
// contract, prefix ctxmem_), registered on a MetricsEndpoint's registry.
// Thread-safety: thread-safe (prometheus-cpp metrics are atomic).

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>

#include "common/service/s3_store_metrics.h"

namespace ctxmem::service {

class CompressorMetrics {
 public:
  // Registers every family on `registry`, which must outlive this object.
  explicit CompressorMetrics(prometheus::Registry& registry);
  CompressorMetrics(const CompressorMetrics&) = delete;
  CompressorMetrics& operator=(const CompressorMetrics&) = delete;

  void AddTokens(int64_t n_tokens) { tokens_->Increment(static_cast<double>(n_tokens)); }
  void ObserveChunkSeconds(double seconds) { chunk_seconds_->Observe(seconds); }
  // One finished compression: whole-job seconds, original tokens / kept entries, blob bytes per
  // original token.
  void ObserveJob(double seconds, double compression_ratio, double bytes_per_token);
  void SetQueueDepth(int64_t waiting) { queue_depth_->Set(static_cast<double>(waiting)); }
  void SetJobsRunning(int64_t running) { jobs_running_->Set(static_cast<double>(running)); }
  // Store size now, and its budget (--store-max-bytes; 0 = unlimited) for alerts on how full it is.
  void SetStore(uint64_t bytes, int64_t n_blobs, uint64_t max_bytes);

  // The S3 store's families (ctxmem_s3_*), to set as S3ClientOptions::observer.
  S3StoreMetrics* s3() { return &s3_; }

 private:
  S3StoreMetrics s3_;
  prometheus::Counter* tokens_;             // ctxmem_compress_tokens_total
  prometheus::Histogram* chunk_seconds_;    // ctxmem_compress_chunk_seconds
  prometheus::Histogram* job_seconds_;      // ctxmem_compress_seconds
  prometheus::Histogram* ratio_;            // ctxmem_compression_ratio
  prometheus::Histogram* bytes_per_token_;  // ctxmem_blob_bytes_per_token
  prometheus::Gauge* queue_depth_;          // ctxmem_compress_queue_depth
  prometheus::Gauge* jobs_running_;         // ctxmem_compress_jobs_running
  prometheus::Gauge* store_bytes_;          // ctxmem_store_bytes
  prometheus::Gauge* store_blobs_;          // ctxmem_store_blobs
  prometheus::Gauge* store_max_bytes_;      // ctxmem_store_max_bytes
};

}  // namespace ctxmem::service
