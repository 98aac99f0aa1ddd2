#include "common/compress/memory_codec.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/blob/blob_id.h"
#include "common/blob/memory_blob.h"
#include "common/compress/compressor.h"
#include "common/compress/config_json.h"
#include "common/compress/kv_quantizer.h"
#include "common/compress/token_source.h"
#include "common/model/generator.h"
#include "common/model/model.h"
#include "tests/unit/blob/test_blob.h"
#include "tests/unit/compress/test_util.h"
#include "tests/unit/model/test_paths.h"

namespace ctxmem::compress {
namespace {

blob::BlobMetadata BaseMetadata(const CompressionConfig& config) {
  blob::BlobMetadata m;
  m.model_fingerprint = "sha256:test";
  m.compression_config = CompressionConfigToJson(config).dump();
  return m;
}

// A memory of the tiny transformer: 2 layers, 2 kv heads, head_dim 8, `len` entries.
Memory TinyMemory(int64_t len, PositionMode mode) {
  Memory memory;
  memory.n_sinks = 2;
  memory.n_tokens = 3 * len;
  memory.position_mode = mode;
  for (int i = 0; i < 2; ++i) {
    LayerMemory layer;
    layer.k = testing::Wave({2, len, 8}, 0.3 * i, 1.5);
    layer.v = testing::Wave({2, len, 8}, 1.1 + i, 0.7);
    // Heads keep different tokens: head h keeps 0, 1 and then every (2 + h)-th token.
    std::vector<int64_t> src;
    for (int64_t h = 0; h < 2; ++h) {
      for (int64_t j = 0; j < len; ++j) src.push_back(j < 2 ? j : j * (2 + h));
    }
    layer.src = at::tensor(src, at::kLong).reshape({2, len});
    layer.rank = at::zeros({2, len});
    memory.layers.push_back(layer);
  }
  return memory;
}

absl::StatusOr<Memory> SealAndDecode(const Memory& memory, weights::StDtype dtype,
                                     const CompressionConfig& config,
                                     const model::Transformer& model) {
  auto encoded = EncodeMemory(memory, dtype, BaseMetadata(config));
  if (!encoded.ok()) return encoded.status();
  auto bytes = blob::SealBlob(encoded->tensors, encoded->metadata);
  if (!bytes.ok()) return bytes.status();
  auto info = blob::VerifyBlob(*bytes);
  if (!info.ok()) return info.status();
  return DecodeMemory(*bytes, info->metadata, model);
}

TEST(MemoryCodecTest, F32RoundTripIsExactAndKeepsPerHeadSources) {
  auto model = testing::MakeTinyTransformer(c10::Device("cpu"));
  CompressionConfig config;
  config.position_mode = PositionMode::kOriginal;
  const Memory memory = TinyMemory(6, PositionMode::kOriginal);
  absl::StatusOr<Memory> back = SealAndDecode(memory, weights::StDtype::kF32, config, *model);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->n_sinks, 2);
  EXPECT_EQ(back->n_tokens, 18);
  EXPECT_EQ(back->position_mode, PositionMode::kOriginal);
  ASSERT_EQ(back->layers.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(at::equal(back->layers[i].k, memory.layers[i].k)) << i;
    EXPECT_TRUE(at::equal(back->layers[i].v, memory.layers[i].v)) << i;
    EXPECT_EQ(testing::Rows(back->layers[i].src), testing::Rows(memory.layers[i].src)) << i;
  }
}

TEST(MemoryCodecTest, Bf16AndF16RoundTripsWithinTheirPrecision) {
  auto model = testing::MakeTinyTransformer(c10::Device("cpu"));
  const Memory memory = TinyMemory(5, PositionMode::kSlots);
  for (auto [dtype, tol] :
       {std::pair{weights::StDtype::kBF16, 1.6e-2}, std::pair{weights::StDtype::kF16, 2e-3}}) {
    absl::StatusOr<Memory> back = SealAndDecode(memory, dtype, CompressionConfig{}, *model);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->layers[0].k.scalar_type(), at::kFloat);  // the model's dtype
    EXPECT_TRUE(at::allclose(back->layers[1].k, memory.layers[1].k, tol, tol));
    EXPECT_FALSE(at::equal(back->layers[1].k, memory.layers[1].k));  // really rounded
  }
}

TEST(MemoryCodecTest, EncodeFillsTheCountsAndKeepsTheBase) {
  CompressionConfig config;
  blob::BlobMetadata base = BaseMetadata(config);
  base.memory_id = std::string(64, 'a');
  base.extra["x.client_label"] = "book";
  auto encoded = EncodeMemory(TinyMemory(4, PositionMode::kSlots), weights::StDtype::kBF16, base);
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_EQ(encoded->metadata.n_kept, (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(encoded->metadata.n_original_tokens, 12);
  EXPECT_EQ(encoded->metadata.n_sinks, 2);
  EXPECT_EQ(encoded->metadata.memory_id, base.memory_id);
  EXPECT_EQ(encoded->metadata.extra.at("x.client_label"), "book");
  EXPECT_EQ(encoded->tensors.size(), 6u);
  EXPECT_EQ(EncodeMemory(Memory{}, weights::StDtype::kBF16, base).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeMemory(TinyMemory(4, PositionMode::kSlots), weights::StDtype::kI64, base)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

KvFormat Kivi(KvDtype dtype, int64_t group) {
  KvFormat f;
  f.dtype = dtype;
  f.group_size = group;
  return f;
}

TEST(MemoryCodecTest, KiviBlobsAreVersion2AndDecodeWithinHalfAStep) {
  auto model = testing::MakeTinyTransformer(c10::Device("cpu"));
  const Memory memory = TinyMemory(11, PositionMode::kSlots);  // 11 = partial key groups
  CompressionConfig config;
  for (KvDtype dtype : {KvDtype::kInt8, KvDtype::kInt4}) {
    for (int64_t group : {4, 64}) {
      auto encoded = EncodeMemory(memory, Kivi(dtype, group), BaseMetadata(config));
      ASSERT_TRUE(encoded.ok()) << encoded.status();
      EXPECT_EQ(encoded->metadata.format_version, 2);
      EXPECT_EQ(encoded->metadata.kv_dtype, weights::StDtype::kU8);
      EXPECT_EQ(encoded->metadata.kv_group_size, group);
      auto bytes = blob::SealBlob(encoded->tensors, encoded->metadata);
      ASSERT_TRUE(bytes.ok()) << bytes.status();
      auto info = blob::VerifyBlob(*bytes);
      ASSERT_TRUE(info.ok()) << info.status();
      EXPECT_EQ(info->metadata.quantization, dtype == KvDtype::kInt4
                                                 ? blob::BlobQuantization::kKiviInt4
                                                 : blob::BlobQuantization::kKiviInt8);
      auto back = DecodeMemory(*bytes, info->metadata, *model);
      ASSERT_TRUE(back.ok()) << back.status();
      // Wave amplitudes 1.5 (k) and 0.7 (v): half a step is at most 1.5 / 15 (int4).
      const double tol = dtype == KvDtype::kInt4 ? 0.11 : 0.007;
      for (int i = 0; i < 2; ++i) {
        EXPECT_TRUE(at::allclose(back->layers[i].k, memory.layers[i].k, 0, tol)) << i;
        EXPECT_TRUE(at::allclose(back->layers[i].v, memory.layers[i].v, 0, tol)) << i;
        EXPECT_EQ(testing::Rows(back->layers[i].src), testing::Rows(memory.layers[i].src));
      }
      auto round = RoundTripMemory(memory, Kivi(dtype, group));
      ASSERT_TRUE(round.ok());  // the evaluation's round trip is what a decoder reads
      EXPECT_TRUE(at::equal(round->layers[1].k, back->layers[1].k));
      EXPECT_TRUE(at::equal(round->layers[1].v, back->layers[1].v));
    }
  }
}

TEST(MemoryCodecTest, Int4BlobIsUnderAThirdOfBf16AtGroup64) {
  // SmolLM2-135M's shape per layer: 3 kv heads, head_dim 64; 260 entries (M=256 + 4 sinks).
  Memory memory;
  memory.n_sinks = 4;
  memory.n_tokens = 8192;
  for (int i = 0; i < 4; ++i) {
    LayerMemory layer;
    layer.k = testing::Wave({3, 260, 64}, 0.1 * i, 2.0);
    layer.v = testing::Wave({3, 260, 64}, 0.7 * i, 1.0);
    layer.src = at::arange(260, at::kLong).unsqueeze(0).expand({3, 260}).contiguous();
    layer.rank = at::zeros({3, 260});
    memory.layers.push_back(layer);
  }
  blob::BlobMetadata base = BaseMetadata(CompressionConfig{});
  auto bf16 = EncodeMemory(memory, KvFormat{}, base);
  auto int4 = EncodeMemory(memory, Kivi(KvDtype::kInt4, 64), base);
  ASSERT_TRUE(bf16.ok() && int4.ok());
  const double ratio = static_cast<double>(blob::SealBlob(int4->tensors, int4->metadata)->size()) /
                       static_cast<double>(blob::SealBlob(bf16->tensors, bf16->metadata)->size());
  EXPECT_LT(ratio, 0.3);
  EXPECT_GT(ratio, 0.25);  // 4 of 16 bits plus scales, zeros and src
}

TEST(MemoryCodecTest, AppendStateTensorsRoundTrip) {
  auto model = testing::MakeTinyTransformer(c10::Device("cpu"));
  Memory memory = TinyMemory(5, PositionMode::kSlots);
  for (int i = 0; i < 2; ++i) memory.layers[i].rank = testing::Wave({2, 5}, i, 3.0);
  AppendState state;
  state.n_steps_done = 7;
  state.planned_length = 100;
  state.has_rank = true;
  for (int i = 0; i < 2; ++i) {
    LayerMemory h;
    h.k = testing::Wave({2, 3, 8}, 2.0 + i, 1.0);
    h.v = testing::Wave({2, 3, 8}, 3.0 + i, 1.0);
    h.src = at::tensor({2, 4, 6, 3, 5, 8}, at::kLong).reshape({2, 3});
    h.rank = testing::Wave({2, 3}, 5.0 + i, 1.0);
    state.hidden.push_back(h);
  }
  KvFormat f32;
  f32.dtype = KvDtype::kF32;
  for (const KvFormat& format : {f32, Kivi(KvDtype::kInt4, 4)}) {
    auto encoded = EncodeMemory(memory, format, BaseMetadata(CompressionConfig{}), &state);
    ASSERT_TRUE(encoded.ok()) << encoded.status();
    auto bytes = blob::SealBlob(encoded->tensors, encoded->metadata);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    auto info = blob::VerifyBlob(*bytes);
    ASSERT_TRUE(info.ok()) << info.status();
    auto back = DecodeResumableMemory(*bytes, info->metadata, *model);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->state.n_steps_done, 7);
    EXPECT_EQ(back->state.planned_length, 100);
    EXPECT_TRUE(back->state.has_rank);
    ASSERT_EQ(back->state.hidden.size(), 2u);
    for (int i = 0; i < 2; ++i) {
      EXPECT_TRUE(at::equal(back->memory.layers[i].rank, memory.layers[i].rank)) << i;
      EXPECT_TRUE(at::equal(back->state.hidden[i].src, state.hidden[i].src)) << i;
      EXPECT_TRUE(at::equal(back->state.hidden[i].rank, state.hidden[i].rank)) << i;
      EXPECT_TRUE(at::allclose(back->state.hidden[i].k, state.hidden[i].k, 0, 1e-2)) << i;
    }
    // The plain decoder ignores the state (a version-1 reader does the same for float blobs).
    auto plain = DecodeMemory(*bytes, info->metadata, *model);
    ASSERT_TRUE(plain.ok()) << plain.status();
    EXPECT_EQ(plain->len(), 5);
  }
}

TEST(MemoryCodecTest, WritesQuantizedSamplesForThePythonCheck) {
  const char* sample = std::getenv("CTXMEM_BLOB_SAMPLE");
  if (sample == nullptr || *sample == '\0') GTEST_SKIP() << "set CTXMEM_BLOB_SAMPLE=<prefix>";
  const Memory memory = TinyMemory(11, PositionMode::kSlots);
  for (auto [dtype, group] :
       {std::pair{KvDtype::kInt8, int64_t{4}}, std::pair{KvDtype::kInt4, int64_t{4}},
        std::pair{KvDtype::kInt4, int64_t{64}}}) {
    blob::BlobMetadata base = BaseMetadata(CompressionConfig{});
    base.extra["x.test_pattern"] = "wave";  // check_blob_python.py regenerates TinyMemory's k/v
    auto encoded = EncodeMemory(memory, Kivi(dtype, group), base);
    ASSERT_TRUE(encoded.ok()) << encoded.status();
    const std::string path = std::string(sample) + ".kivi_" + std::string(KvDtypeLabel(dtype)) +
                             "_g" + std::to_string(group) + ".safetensors";
    ASSERT_TRUE(blob::SealBlobToFile(encoded->tensors, encoded->metadata, path).ok()) << path;
    std::printf("wrote %s\n", path.c_str());
  }
}

TEST(MemoryCodecTest, ParsesKvDtypeNames) {
  EXPECT_EQ(ParseKvDtype("").value(), weights::StDtype::kBF16);
  EXPECT_EQ(ParseKvDtype("f16").value(), weights::StDtype::kF16);
  EXPECT_EQ(ParseKvDtype("f32").value(), weights::StDtype::kF32);
  const absl::Status bad = ParseKvDtype("fp8").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("bf16, f16, f32"), std::string::npos) << bad;
}

TEST(MemoryCodecTest, AnotherModelShapeIsFailedPrecondition) {
  auto model = testing::MakeTinyTransformer(c10::Device("cpu"));
  Memory memory = TinyMemory(3, PositionMode::kSlots);
  Memory three_layers = memory;
  three_layers.layers.push_back(memory.layers[0]);
  absl::Status s =
      SealAndDecode(three_layers, weights::StDtype::kF32, CompressionConfig{}, *model).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("3 layers, the model has 2"), std::string::npos) << s;

  Memory wide = memory;  // head_dim 4 instead of 8
  for (auto& layer : wide.layers) {
    layer.k = layer.k.narrow(2, 0, 4).contiguous();
    layer.v = layer.v.narrow(2, 0, 4).contiguous();
  }
  s = SealAndDecode(wide, weights::StDtype::kF32, CompressionConfig{}, *model).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("head_dim"), std::string::npos) << s;
}

TEST(MemoryCodecTest, SourceIndicesPastTheTokenCountAreDataLoss) {
  auto model = testing::MakeTinyTransformer(c10::Device("cpu"));
  Memory memory = TinyMemory(3, PositionMode::kSlots);
  memory.n_tokens = 2;  // src holds indices up to 6
  EXPECT_EQ(
      SealAndDecode(memory, weights::StDtype::kF32, CompressionConfig{}, *model).status().code(),
      absl::StatusCode::kDataLoss);
}

TEST(MemoryCodecTest, TokenizerFingerprintIsStableAndSensitive) {
  if (!ctxmem::testing::BundledModelPresent()) GTEST_SKIP() << "bundled model not found";
  auto model = model::Model::Load(ctxmem::testing::BundledModelPath());
  ASSERT_TRUE(model.ok()) << model.status();
  const std::string a = TokenizerFingerprint(*(*model)->tokenizer()).value();
  EXPECT_EQ(a, TokenizerFingerprint(*(*model)->tokenizer()).value());
  EXPECT_EQ(a.rfind("sha256:", 0), 0u);
  tokenizer::TokenizerSpec spec = (*model)->tokenizer()->spec();
  std::swap(spec.merges[0], spec.merges[1]);
  auto other = tokenizer::Tokenizer::Create(spec);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_NE(TokenizerFingerprint(**other).value(), a);

  auto identity = ComputeModelIdentity(**model, "SmolLM2-135M-Instruct");
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ(identity->model_fingerprint, blob::FingerprintFile((*model)->path()).value());
  EXPECT_EQ(identity->tokenizer_fingerprint, a);
  EXPECT_EQ(identity->model_name, "SmolLM2-135M-Instruct");
}

// The whole path a service takes: compress real text with the bundled model, seal, open the
// blob from disk, decode, and answer from it: the same tokens as from the original memory.
TEST(MemoryCodecBundledModelTest, GenerationFromADecodedBlobMatchesTheOriginalMemory) {
  if (!ctxmem::testing::BundledModelPresent()) GTEST_SKIP() << "bundled model not found";
  auto loaded = model::Model::Load(ctxmem::testing::BundledModelPath());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const model::Model& model = **loaded;
  std::ifstream in(ctxmem::testing::TestDataPath("text/pride_and_prejudice.txt"));
  std::stringstream text;
  text << in.rdbuf();
  std::vector<int32_t> ids = model.tokenizer()->Encode(text.str().substr(0, 2000)).value();
  ids.resize(std::min<size_t>(ids.size(), 256));
  CompressionConfig config;
  config.pruner = "tova";
  config.chunk_size = 128;
  config.memory_size = 64;
  SpanTokenSource source(ids);
  auto result = Compress(model.transformer(), source, config);
  ASSERT_TRUE(result.ok()) << result.status();
  const Memory& memory = result->memory;

  const std::vector<int32_t> prompt =
      model.tokenizer()->Encode("\nWho is the story about? It is about").value();
  model::GenerateOptions options;
  options.max_new_tokens = 8;
  options.stop_at_eos = false;
  auto generate = [&](const Memory& m) -> std::vector<int32_t> {
    model::KvCache past = ToKvCache(m, model.transformer()).value();
    auto out = model::Generate(model, prompt, &past, options);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? out->ids : std::vector<int32_t>{};
  };
  const std::vector<int32_t> want = generate(memory);
  ASSERT_EQ(want.size(), 8u);

  auto identity = ComputeModelIdentity(model, "SmolLM2-135M-Instruct").value();
  blob::testing::TempDir dir;
  for (weights::StDtype dtype : {weights::StDtype::kF32, weights::StDtype::kBF16}) {
    blob::BlobMetadata base;
    base.model_fingerprint = identity.model_fingerprint;
    base.tokenizer_fingerprint = identity.tokenizer_fingerprint;
    base.compression_config = CompressionConfigToJson(config).dump();
    auto encoded = EncodeMemory(memory, dtype, base);
    ASSERT_TRUE(encoded.ok()) << encoded.status();
    const std::string path = dir.File("m.safetensors");
    auto n_bytes = blob::SealBlobToFile(encoded->tensors, encoded->metadata, path);
    ASSERT_TRUE(n_bytes.ok()) << n_bytes.status();
    auto blob =
        blob::MemoryBlob::Open(path, {identity.model_fingerprint, identity.tokenizer_fingerprint});
    ASSERT_TRUE(blob.ok()) << blob.status();
    auto decoded = DecodeMemory(**blob, model.transformer());
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->len(), memory.len());
    EXPECT_EQ(decoded->n_tokens, 256);
    const std::vector<int32_t> got = generate(*decoded);
    if (dtype == weights::StDtype::kF32) {
      EXPECT_EQ(got, want);
      // 30 layers x 2 (k, v) x 3 kv heads x 68 entries x 64 x 4 bytes, plus src and header.
      EXPECT_GT(*n_bytes, 30u * 2 * 3 * 68 * 64 * 4);
    } else {
      EXPECT_EQ(got.size(), want.size());
      EXPECT_EQ(got[0], want[0]);  // bf16 rounding may change later greedy picks
    }
  }
}

}  // namespace
}  // namespace ctxmem::compress
