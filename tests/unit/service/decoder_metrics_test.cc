#include "common/service/decoder_metrics.h"

#include <string>

#include "common/service/metrics_endpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ctxmem::service {
namespace {

using ::testing::HasSubstr;

TEST(DecoderMetricsTest, ExposesTheContractNames) {
  auto endpoint = MetricsEndpoint::Start("");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  DecoderMetrics metrics((*endpoint)->registry());
  metrics.ObserveFetch(1000, 0.2);
  metrics.CountLookup(blob::CacheSource::kFetch);
  metrics.CountLookup(blob::CacheSource::kRam);
  metrics.CountLookup(blob::CacheSource::kRam);
  metrics.CountLookup(blob::CacheSource::kDisk);
  metrics.SetCacheBytes(1000, 2000);
  metrics.ObserveTtft(true, 0.05);
  metrics.ObserveTtft(false, 1.5);
  metrics.ObserveGeneration(12, 40.0);
  metrics.SetQueueDepth(3);
  metrics.AddActiveStreams(2);
  metrics.AddActiveStreams(-1);
  const std::string text = (*endpoint)->Render();
  EXPECT_THAT(text, HasSubstr("ctxmem_fetch_bytes_total 1000"));
  EXPECT_THAT(text, HasSubstr("ctxmem_fetch_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("ctxmem_cache_hits_total{tier=\"ram\"} 2"));
  EXPECT_THAT(text, HasSubstr("ctxmem_cache_hits_total{tier=\"disk\"} 1"));
  EXPECT_THAT(text, HasSubstr("ctxmem_cache_misses_total 1"));
  EXPECT_THAT(text, HasSubstr("ctxmem_cache_bytes{tier=\"disk\"} 2000"));
  EXPECT_THAT(text, HasSubstr("ctxmem_ttft_seconds_count{source=\"memory\"} 1"));
  EXPECT_THAT(text, HasSubstr("ctxmem_ttft_seconds_count{source=\"prefill\"} 1"));
  EXPECT_THAT(text, HasSubstr("ctxmem_generated_tokens_total 12"));
  EXPECT_THAT(text, HasSubstr("ctxmem_decode_tokens_per_second_count 1"));
  EXPECT_THAT(text, HasSubstr("ctxmem_decoder_queue_depth 3"));
  EXPECT_THAT(text, HasSubstr("ctxmem_generate_streams_active 1"));
}

}  // namespace
}  // namespace ctxmem::service
