#pragma once
// DecoderMetrics: the decoder's Prometheus families (names in the service contract), added to
// a MetricsEndpoint's registry: fetches, cache tiers, time to first token by source, generated
// tokens and decode speed, queue depth and open streams, rows per batched decode step.
// Thread-safety: thread-safe (prometheus-cpp metrics are atomic).

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>

#include "common/blob/blob_cache.h"
#include "common/service/s3_store_metrics.h"

namespace ctxmem::service {

class DecoderMetrics {
 public:
  // Registers the families in `registry`, which must outlive this object.
  explicit DecoderMetrics(prometheus::Registry& registry);
  DecoderMetrics(const DecoderMetrics&) = delete;
  DecoderMetrics& operator=(const DecoderMetrics&) = delete;

  // One blob downloaded from a compressor: ctxmem_fetch_bytes_total, ctxmem_fetch_seconds.
  void ObserveFetch(uint64_t n_bytes, double seconds);
  // One blob lookup: a hit by tier (ram|disk) or a miss (a fetch, own or shared).
  void CountLookup(blob::CacheSource source);
  // ctxmem_cache_bytes{tier}.
  void SetCacheBytes(uint64_t ram_bytes, uint64_t disk_bytes);
  // ctxmem_ttft_seconds{source="memory"|"prefill"}.
  void ObserveTtft(bool from_memory, double seconds);
  // ctxmem_generated_tokens_total and, with a decode phase, ctxmem_decode_tokens_per_second.
  void ObserveGeneration(int64_t n_generated, double decode_tokens_per_second);
  void SetQueueDepth(int64_t n_waiting);   // ctxmem_decoder_queue_depth
  void AddActiveStreams(int64_t delta);    // ctxmem_generate_streams_active
  void ObserveBatchRows(int64_t n_rows);   // ctxmem_decode_batch_rows: streams in one step
  void SetBatchQueued(int64_t n_waiting);  // ctxmem_decode_batch_queued
  // ctxmem_decode_step_prompt_tokens_total: joiners' prompt tokens fed as rows of a step.
  void CountStepPromptTokens(int64_t n_tokens);

  // The S3 store's families (ctxmem_s3_*), to set as S3ClientOptions::observer.
  S3StoreMetrics* s3() { return &s3_; }

 private:
  S3StoreMetrics s3_;
  prometheus::Counter* fetch_bytes_;
  prometheus::Histogram* fetch_seconds_;
  prometheus::Counter* hits_ram_;
  prometheus::Counter* hits_disk_;
  prometheus::Counter* misses_;
  prometheus::Gauge* cache_bytes_ram_;
  prometheus::Gauge* cache_bytes_disk_;
  prometheus::Histogram* ttft_memory_;
  prometheus::Histogram* ttft_prefill_;
  prometheus::Counter* generated_tokens_;
  prometheus::Histogram* decode_tokens_per_second_;
  prometheus::Gauge* queue_depth_;
  prometheus::Gauge* streams_active_;
  prometheus::Histogram* batch_rows_;
  prometheus::Gauge* batch_queued_;
  prometheus::Counter* step_prompt_tokens_;
};

}  // namespace ctxmem::service
