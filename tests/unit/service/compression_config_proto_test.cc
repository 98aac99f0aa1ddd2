#include "common/service/compression_config_proto.h"

#include <gtest/gtest.h>

#include <string>

#include "nlohmann/json.hpp"

namespace ctxmem::service {
namespace {

CompressionLimits Limits() {
  CompressionLimits limits;
  limits.model_name = "SmolLM2-135M-Instruct";
  limits.max_positions = 8192;
  return limits;
}

absl::Status Resolve(const ctxmem::v1::CompressionConfig& p) {
  return ResolveCompressionConfig(p, Limits()).status();
}

TEST(CompressionConfigProtoTest, EmptyConfigTakesTheDocumentedDefaults) {
  auto r = ResolveCompressionConfig(ctxmem::v1::CompressionConfig(), Limits());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->config.pruner, "streaming_llm");
  EXPECT_EQ(r->config.memory_type, compress::MemoryType::kFm);
  EXPECT_EQ(r->config.chunk_size, 512);
  EXPECT_EQ(r->config.memory_size, 256);
  EXPECT_EQ(r->config.n_sink_tokens, 4);
  EXPECT_EQ(r->config.score_window, 32);
  EXPECT_EQ(r->config.conv_kernel_size, 5);
  EXPECT_EQ(r->kv_format.dtype, compress::KvDtype::kBF16);
  const nlohmann::json j = nlohmann::json::parse(r->canonical_json);
  EXPECT_EQ(j["kv_dtype"], "bf16");
  EXPECT_FALSE(j.contains("kv_group_size"));  // float ids stay as they were
  EXPECT_EQ(j["position_mode"], "slots");
}

TEST(CompressionConfigProtoTest, ExplicitZerosOfOptionalFieldsAreKept) {
  ctxmem::v1::CompressionConfig p;
  p.set_memory_size(0);
  p.set_n_sink_tokens(8);
  auto r = ResolveCompressionConfig(p, Limits());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->config.memory_size, 0);
  EXPECT_EQ(r->config.n_sink_tokens, 8);
  p.set_n_sink_tokens(0);
  EXPECT_EQ(Resolve(p).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CompressionConfigProtoTest, ImdcAndNamesParse) {
  ctxmem::v1::CompressionConfig p;
  p.set_pruner("snapkv");
  p.set_memory_type("IMDC");
  p.set_schedule("sqrt");
  p.set_position_mode("original");
  p.set_score_mode("window");
  p.set_kv_dtype("f32");
  auto r = ResolveCompressionConfig(p, Limits());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->config.memory_type, compress::MemoryType::kIm);
  EXPECT_TRUE(r->config.decremental_chunk);
  EXPECT_EQ(r->config.schedule, compress::Schedule::kSqrt);
  EXPECT_EQ(r->config.position_mode, compress::PositionMode::kOriginal);
  EXPECT_EQ(r->kv_format.dtype, compress::KvDtype::kF32);
}

TEST(CompressionConfigProtoTest, ErrorsNameTheFieldAndListValidValues) {
  struct Case {
    void (*set)(ctxmem::v1::CompressionConfig*);
    std::string want;
  };
  const Case cases[] = {
      {[](auto* p) { p->set_pruner("nope"); }, "tova"},
      {[](auto* p) { p->set_memory_type("XL"); }, "config.memory_type"},
      {[](auto* p) { p->set_schedule("cubic"); }, "config.schedule"},
      {[](auto* p) { p->set_position_mode("abs"); }, "config.position_mode"},
      {[](auto* p) { p->set_score_mode("all"); }, "config.score_mode"},
      {[](auto* p) { p->set_kv_dtype("fp8"); }, "bf16, f16, f32"},
      {[](auto* p) { p->set_chunk_size(-1); }, "chunk_size=-1"},
      {[](auto* p) { p->set_conv_kernel_size(4); }, "conv_kernel_size=4"},
      {[](auto* p) { p->set_chunk_size(9000); }, "chunk_size=9000"},
      {[](auto* p) { p->set_memory_size(70000); }, "memory_size=70000"},
  };
  for (const Case& c : cases) {
    ctxmem::v1::CompressionConfig p;
    c.set(&p);
    const absl::Status s = Resolve(p);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.want << " " << s;
    EXPECT_NE(s.message().find(c.want), std::string::npos) << s;
  }
}

TEST(CompressionConfigProtoTest, AnotherModelIsFailedPrecondition) {
  ctxmem::v1::CompressionConfig p;
  p.set_model("llama-3-8b");
  const absl::Status s = Resolve(p);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("SmolLM2-135M-Instruct"), std::string::npos) << s;
  p.set_model("SmolLM2-135M-Instruct");
  EXPECT_TRUE(Resolve(p).ok());
}

TEST(CompressionConfigProtoTest, CanonicalJsonIsTheSameForEqualConfigs) {
  ctxmem::v1::CompressionConfig a;  // defaults
  ctxmem::v1::CompressionConfig b;
  b.set_pruner("streaming_llm");
  b.set_chunk_size(512);
  b.set_memory_size(256);
  b.set_kv_dtype("bf16");
  EXPECT_EQ(ResolveCompressionConfig(a, Limits())->canonical_json,
            ResolveCompressionConfig(b, Limits())->canonical_json);
  b.set_kv_dtype("f16");  // the blob differs, so the id must too
  EXPECT_NE(ResolveCompressionConfig(a, Limits())->canonical_json,
            ResolveCompressionConfig(b, Limits())->canonical_json);
}

TEST(CompressionConfigProtoTest, QuantizedKvDtypesAndGroupSize) {
  ctxmem::v1::CompressionConfig p;
  p.set_kv_dtype("int4");
  auto r = ResolveCompressionConfig(p, Limits());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kv_format.dtype, compress::KvDtype::kInt4);
  EXPECT_EQ(r->kv_format.group_size, compress::kDefaultKvGroupSize);
  nlohmann::json j = nlohmann::json::parse(r->canonical_json);
  EXPECT_EQ(j["kv_dtype"], "int4");
  EXPECT_EQ(j["kv_group_size"], 64);
  p.set_kv_group_size(32);
  auto r32 = ResolveCompressionConfig(p, Limits());
  ASSERT_TRUE(r32.ok()) << r32.status();
  EXPECT_EQ(r32->kv_format.group_size, 32);
  EXPECT_NE(r32->canonical_json, r->canonical_json);
  p.set_kv_group_size(5000);
  EXPECT_EQ(Resolve(p).code(), absl::StatusCode::kInvalidArgument);
  p.set_kv_dtype("bf16");
  p.set_kv_group_size(32);  // a group size without quantization is a mistake
  EXPECT_EQ(Resolve(p).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CompressionConfigProtoTest, StoredConfigResolvesBackToItself) {
  ctxmem::v1::CompressionConfig p;
  p.set_pruner("h2o");
  p.set_memory_type("IMDC");
  p.set_kv_dtype("int8");
  p.set_kv_group_size(16);
  p.set_seed(7);
  auto r = ResolveCompressionConfig(p, Limits());
  ASSERT_TRUE(r.ok()) << r.status();
  auto back = ResolveStoredCompressionConfig(r->canonical_json, Limits());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->canonical_json, r->canonical_json);
  EXPECT_EQ(back->config.pruner, "h2o");
  EXPECT_TRUE(back->config.decremental_chunk);
  EXPECT_EQ(back->kv_format.group_size, 16);
  EXPECT_EQ(ResolveStoredCompressionConfig("{\"pruner\":\"h2o\"}", Limits()).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(ResolveStoredCompressionConfig("not json", Limits()).status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace ctxmem::service
