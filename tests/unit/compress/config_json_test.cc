#include "common/compress/config_json.h"

#include "gtest/gtest.h"

namespace ctxmem::compress {
namespace {

TEST(ConfigJsonTest, NamesEveryFieldWithShortEnumNames) {
  CompressionConfig c;
  c.pruner = "tova";
  c.memory_type = MemoryType::kIm;
  c.decremental_chunk = true;
  c.chunk_size = 1024;
  c.memory_size = 128;
  c.schedule = Schedule::kSqrt;
  c.seed = 7;
  nlohmann::json j = CompressionConfigToJson(c);
  EXPECT_EQ(j["pruner"], "tova");
  EXPECT_EQ(j["memory_type"], "IMDC");
  EXPECT_EQ(j["decremental_chunk"], true);
  EXPECT_EQ(j["chunk_size"], 1024);
  EXPECT_EQ(j["memory_size"], 128);
  EXPECT_EQ(j["schedule"], "sqrt");
  EXPECT_EQ(j["position_mode"], "slots");
  EXPECT_EQ(j["score_mode"], "exact");
  EXPECT_EQ(j["n_sink_tokens"], 4);
  EXPECT_EQ(j["seed"], 7);
  EXPECT_EQ(j.size(), 14u);
}

}  // namespace
}  // namespace ctxmem::compress
