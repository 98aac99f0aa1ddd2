// Incremental append (CompressAppend): compress(A) then append(B) against one compression of
// A + B, per pruner and memory type, directly and through a sealed blob (EncodeMemory with the
// append state, VerifyBlob, DecodeResumableMemory).
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "common/blob/memory_blob.h"
#include "common/compress/compressor.h"
#include "common/compress/config_json.h"
#include "common/compress/memory_codec.h"
#include "common/compress/pruner_registry.h"
#include "common/compress/token_source.h"
#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::compress {
namespace {

std::vector<int32_t> Tokens(int n, int salt = 0) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 7 + 3 + salt * 13) % 61;
  return t;
}

CompressResult MustCompress(const model::Transformer& model, const std::vector<int32_t>& tokens,
                            const CompressionConfig& config, bool announce_length = true) {
  SpanTokenSource source(tokens, announce_length);
  auto r = Compress(model, source, config);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : CompressResult{};
}

CompressResult MustAppend(const model::Transformer& model, const std::vector<int32_t>& tokens,
                          const CompressionConfig& config, const ResumableMemory& base) {
  SpanTokenSource source(tokens);
  auto r = CompressAppend(model, source, config, base);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : CompressResult{};
}

// The base through a sealed f32 blob, as the compressor service stores it.
ResumableMemory ThroughBlob(const CompressResult& r, const CompressionConfig& config,
                            const model::Transformer& model) {
  blob::BlobMetadata meta;
  meta.model_fingerprint = "sha256:test";
  meta.compression_config = CompressionConfigToJson(config).dump();
  KvFormat f32;
  f32.dtype = KvDtype::kF32;
  auto encoded = EncodeMemory(r.memory, f32, meta, &r.state);
  EXPECT_TRUE(encoded.ok()) << encoded.status();
  if (!encoded.ok()) return {};
  auto bytes = blob::SealBlob(encoded->tensors, encoded->metadata);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  auto info = blob::VerifyBlob(*bytes);
  EXPECT_TRUE(info.ok()) << info.status();
  auto base = DecodeResumableMemory(*bytes, info->metadata, model);
  EXPECT_TRUE(base.ok()) << base.status();
  return base.ok() ? std::move(*base) : ResumableMemory{};
}

// Same selections (src per head), values within round-off, same counts.
void ExpectSameMemory(const Memory& a, const Memory& b, const std::string& what) {
  ASSERT_EQ(a.layers.size(), b.layers.size()) << what;
  EXPECT_EQ(a.n_tokens, b.n_tokens) << what;
  EXPECT_EQ(a.n_sinks, b.n_sinks) << what;
  for (size_t i = 0; i < a.layers.size(); ++i) {
    ASSERT_EQ(a.layers[i].len(), b.layers[i].len()) << what << " layer " << i;
    if (a.layers[i].len() == 0) continue;
    EXPECT_TRUE(at::equal(a.layers[i].src, b.layers[i].src)) << what << " layer " << i;
    EXPECT_TRUE(at::allclose(a.layers[i].k, b.layers[i].k, 1e-4, 1e-5)) << what << " layer " << i;
    EXPECT_TRUE(at::allclose(a.layers[i].v, b.layers[i].v, 1e-4, 1e-5)) << what << " layer " << i;
  }
}

ResumableMemory Resumable(const CompressResult& r) { return {r.memory, r.state}; }

TEST(CompressAppendTest, FmChunkAlignedAppendEqualsOneCompressionForEveryPruner) {
  auto model = testing::MakeTinyTransformer(c10::Device("cpu"));
  const std::vector<int32_t> a = Tokens(24);  // 3 chunks of 8
  const std::vector<int32_t> b = Tokens(21, 1);
  std::vector<int32_t> ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  int n_tested = 0;
  for (const std::string& name : PrunerRegistry::Global().names()) {
    // Need trained weights (the same driver path); mean_fuser runs here.
    if (name == "perceiver" || name == "perceiver_fuser" || name == "llm_fuser") continue;
    if (name == "rcc") continue;  // windows of rcc_window; its append: rcc_model_test
    CompressionConfig config;
    config.pruner = name;
    config.chunk_size = 8;
    config.memory_size = 6;
    config.n_sink_tokens = 2;
    const CompressResult whole = MustCompress(*model, ab, config);
    const CompressResult first = MustCompress(*model, a, config);
    const CompressResult direct = MustAppend(*model, b, config, Resumable(first));
    ExpectSameMemory(direct.memory, whole.memory, name + " direct");
    EXPECT_EQ(direct.state.n_steps_done, whole.state.n_steps_done) << name;
    EXPECT_EQ(direct.n_chunks, 3) << name;  // O(new tokens): only B's chunks ran
    ++n_tested;
    if (first.memory.empty()) continue;  // local_window keeps nothing: there is no blob
    const CompressResult blob = MustAppend(*model, b, config, ThroughBlob(first, config, *model));
    ExpectSameMemory(blob.memory, whole.memory, name + " through a blob");
  }
  EXPECT_GE(n_tested, 9);
}

// IM, IMDC and FIXED_INCREMENTAL plan over the length they were given: an append continues the
// base's plan (steps past it, as for a stream longer than planned), so it equals one compression
// of A + B planned for |A| tokens (a stream of unknown length with expected_length = |A|).
// DOUBLE_COMPRESS's targets depend on the step only; its hidden store travels in the blob.
TEST(CompressAppendTest, LengthPlannedTypesEqualOneCompressionPlannedForTheBase) {
  auto model = testing::MakeTinyTransformer(c10::Device("cpu"));
  const std::vector<int32_t> a = Tokens(40);
  const std::vector<int32_t> b = Tokens(27, 2);
  std::vector<int32_t> ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  for (const std::string type : {"IM", "IMDC", "FIXED_INCREMENTAL", "DOUBLE_COMPRESS"}) {
    for (const std::string pruner : {"h2o", "tova", "streaming_llm"}) {
      CompressionConfig config;
      config.pruner = pruner;
      auto choice = ParseMemoryType(type);
      ASSERT_TRUE(choice.ok());
      config.memory_type = choice->type;
      config.decremental_chunk = choice->decremental_chunk;
      config.chunk_size = 8;
      config.memory_size = 6;
      config.n_sink_tokens = 2;
      if (config.memory_type == MemoryType::kDoubleCompress) config.double_compress_size = 3;
      const std::string what = type + "/" + pruner;
      const CompressResult first = MustCompress(*model, a, config);
      ASSERT_EQ(first.state.planned_length, 40) << what;
      CompressionConfig planned = config;
      planned.expected_length = 40;
      const CompressResult whole = MustCompress(*model, ab, planned, /*announce_length=*/false);
      const CompressResult appended =
          MustAppend(*model, b, config, ThroughBlob(first, config, *model));
      ExpectSameMemory(appended.memory, whole.memory, what);
      EXPECT_EQ(appended.state.hidden.size(), whole.state.hidden.size()) << what;
      for (size_t i = 0; i < whole.state.hidden.size(); ++i) {
        EXPECT_TRUE(at::equal(appended.state.hidden[i].src, whole.state.hidden[i].src)) << what;
      }
      // A sealed IM memory is full: appended chunks keep it at M (+ sinks).
      if (config.memory_type == MemoryType::kIm) {
        EXPECT_EQ(appended.memory.len(), 8) << what;
      }
    }
  }
}

TEST(CompressAppendTest, AppendsChainAndKeepCounting) {
  auto model = testing::MakeTinyTransformer(c10::Device("cpu"));
  CompressionConfig config;
  config.pruner = "h2o";
  config.chunk_size = 8;
  config.memory_size = 6;
  const std::vector<int32_t> a = Tokens(16), b = Tokens(16, 1), c = Tokens(11, 2);
  std::vector<int32_t> abc = a;
  abc.insert(abc.end(), b.begin(), b.end());
  abc.insert(abc.end(), c.begin(), c.end());
  const CompressResult r1 = MustCompress(*model, a, config);
  const CompressResult r2 = MustAppend(*model, b, config, ThroughBlob(r1, config, *model));
  const CompressResult r3 = MustAppend(*model, c, config, ThroughBlob(r2, config, *model));
  ExpectSameMemory(r3.memory, MustCompress(*model, abc, config).memory, "a+b+c");
  EXPECT_EQ(r3.state.n_steps_done, 6);
  EXPECT_EQ(r3.memory.n_tokens, 43);
}

TEST(CompressAppendTest, RefusesBasesThatDoNotFit) {
  auto model = testing::MakeTinyTransformer(c10::Device("cpu"));
  CompressionConfig config;
  config.chunk_size = 8;
  config.memory_size = 6;
  const CompressResult first = MustCompress(*model, Tokens(16), config);
  const std::vector<int32_t> more = Tokens(8, 1);
  {
    CompressionConfig other = config;
    other.position_mode = PositionMode::kOriginal;
    SpanTokenSource source(more);
    auto r = CompressAppend(*model, source, other, Resumable(first));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  }
  {
    ResumableMemory no_steps = Resumable(first);
    no_steps.state.n_steps_done = 0;
    SpanTokenSource source(more);
    EXPECT_EQ(CompressAppend(*model, source, config, no_steps).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  {
    CompressionConfig dc = config;
    dc.memory_type = MemoryType::kDoubleCompress;
    dc.double_compress_size = 3;
    SpanTokenSource source(more);  // an FM base has no hidden store
    EXPECT_EQ(CompressAppend(*model, source, dc, Resumable(first)).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  {
    // A blob sealed without an append state cannot be continued.
    blob::BlobMetadata meta;
    meta.model_fingerprint = "sha256:test";
    meta.compression_config = "{}";
    auto encoded = EncodeMemory(first.memory, weights::StDtype::kF32, meta);
    ASSERT_TRUE(encoded.ok());
    auto bytes = blob::SealBlob(encoded->tensors, encoded->metadata);
    auto info = blob::VerifyBlob(*bytes);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(DecodeResumableMemory(*bytes, info->metadata, *model).status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
}

}  // namespace
}  // namespace ctxmem::compress
