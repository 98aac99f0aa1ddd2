#include "common/model/generator.h"

#include <ATen/Parallel.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common/model/model.h"
#include "common/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/model/test_paths.h"

namespace ctxmem::model {
namespace {

using ctxmem::testing::BundledModelPath;
using ctxmem::testing::BundledModelPresent;
using ctxmem::testing::TestDataPath;

// One generation of tests/data/model/greedy.json (docs/goldens.md): HF transformers' greedy
// generate() on the bundled GGUF, 32 new tokens, stopping at ids {2, 0}.
struct GreedyGolden {
  std::string kind;
  std::string prompt_text;
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> generated_ids;
  bool stopped_at_eos = false;
  std::string text_skip_special;
};

struct GreedyGoldens {
  int64_t max_new_tokens = 0;
  std::vector<int32_t> eos_ids;
  std::vector<GreedyGolden> generations;
};

GreedyGoldens ReadGreedyGoldens() {
  std::ifstream in(TestDataPath("model/greedy.json"));
  EXPECT_TRUE(in.good()) << "missing " << TestDataPath("model/greedy.json");
  GreedyGoldens g;
  if (!in.good()) return g;
  const nlohmann::json j = nlohmann::json::parse(in);
  g.max_new_tokens = j.at("max_new_tokens").get<int64_t>();
  g.eos_ids = j.at("eos_token_ids").get<std::vector<int32_t>>();
  for (const auto& e : j.at("generations")) {
    GreedyGolden x;
    x.kind = e.at("kind").get<std::string>();
    x.prompt_text = e.at("prompt_text").get<std::string>();
    x.prompt_ids = e.at("prompt_ids").get<std::vector<int32_t>>();
    x.generated_ids = e.at("generated_ids").get<std::vector<int32_t>>();
    x.stopped_at_eos = e.at("stopped_at_eos").get<bool>();
    x.text_skip_special = e.at("generated_text_skip_special").get<std::string>();
    g.generations.push_back(std::move(x));
  }
  return g;
}

class GeneratorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!BundledModelPresent()) return;
    at::set_num_threads(2);
    auto m = Model::Load(BundledModelPath());
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = std::move(*m).release();
    goldens_ = new GreedyGoldens(ReadGreedyGoldens());
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
    delete goldens_;
    goldens_ = nullptr;
  }
  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << "bundled model not found: " << BundledModelPath();
    ASSERT_FALSE(goldens_->generations.empty());
  }
  const GreedyGolden& Plain() const {
    for (const auto& g : goldens_->generations) {
      if (g.kind == "plain") return g;
    }
    return goldens_->generations.front();
  }
  GenerateOptions GoldenOptions() const {
    GenerateOptions o;
    o.max_new_tokens = goldens_->max_new_tokens;
    o.stop_ids = goldens_->eos_ids;
    return o;
  }

  static Model* model_;
  static GreedyGoldens* goldens_;
};
Model* GeneratorTest::model_ = nullptr;
GreedyGoldens* GeneratorTest::goldens_ = nullptr;

TEST_F(GeneratorTest, GreedyMatchesTransformers) {
  for (const GreedyGolden& g : goldens_->generations) {
    SCOPED_TRACE(g.kind);
    auto ids = model_->tokenizer()->Encode(g.prompt_text);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, g.prompt_ids) << "our tokenizer differs from HF on the prompt";
    auto r = Generate(*model_, g.prompt_ids, nullptr, GoldenOptions());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->ids, g.generated_ids);
    EXPECT_EQ(r->text, g.text_skip_special);
    EXPECT_EQ(r->stop_reason, g.stopped_at_eos ? StopReason::kEos : StopReason::kMaxTokens);
    EXPECT_EQ(r->n_prompt_tokens, static_cast<int64_t>(g.prompt_ids.size()));
    EXPECT_GT(r->prefill_seconds, 0);
    EXPECT_GE(r->ttft_seconds, r->prefill_seconds);
    if (r->ids.size() > 1) {
      EXPECT_GT(r->decode_seconds, 0);
    }
  }
}

TEST_F(GeneratorTest, StreamedPiecesConcatenateToText) {
  for (const GreedyGolden& g : goldens_->generations) {
    SCOPED_TRACE(g.kind);
    std::string streamed;
    std::vector<int32_t> streamed_ids;
    auto r = Generate(*model_, g.prompt_ids, nullptr, GoldenOptions(),
                      [&](int32_t id, std::string_view delta) {
                        streamed_ids.push_back(id);
                        streamed.append(delta);
                        return true;
                      });
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(streamed, r->text);
    EXPECT_EQ(streamed_ids, r->ids);
  }
}

TEST_F(GeneratorTest, StopStringStopsAndIsNotEmitted) {
  const GreedyGolden& g = Plain();
  const std::string stop = "brave";
  const size_t at = g.text_skip_special.find(stop);
  ASSERT_NE(at, std::string::npos) << g.text_skip_special;
  GenerateOptions o = GoldenOptions();
  o.stop_strings = {"no such text", stop};
  std::string streamed;
  auto r = Generate(*model_, g.prompt_ids, nullptr, o, [&](int32_t, std::string_view delta) {
    // The text before "brave" has no 'b', so any 'b' is a leaked start of the stop string.
    EXPECT_EQ(delta.find('b'), std::string_view::npos) << delta;
    streamed.append(delta);
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stop_reason, StopReason::kStopString);
  EXPECT_EQ(r->text, g.text_skip_special.substr(0, at));
  EXPECT_EQ(streamed, r->text);
  EXPECT_LT(r->ids.size(), g.generated_ids.size());
}

TEST_F(GeneratorTest, CallbackReturningFalseCancels) {
  int n_calls = 0;
  auto r = Generate(*model_, Plain().prompt_ids, nullptr, GoldenOptions(),
                    [&](int32_t, std::string_view) { return ++n_calls < 3; });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stop_reason, StopReason::kCancelled);
  EXPECT_EQ(n_calls, 3);
  EXPECT_EQ(r->ids.size(), 3u);
}

TEST_F(GeneratorTest, MaxNewTokensStops) {
  GenerateOptions o = GoldenOptions();
  o.max_new_tokens = 5;
  auto r = Generate(*model_, Plain().prompt_ids, nullptr, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stop_reason, StopReason::kMaxTokens);
  EXPECT_EQ(r->ids,
            std::vector<int32_t>(Plain().generated_ids.begin(), Plain().generated_ids.begin() + 5));
}

TEST_F(GeneratorTest, ContinuesFromAPastCache) {
  // Prefill the first part of the prompt into a cache, then generate from the rest: positions
  // continue from past.next_position and the result equals one uninterrupted generation.
  const GreedyGolden& g = Plain();
  const size_t split = 6;
  ASSERT_GT(g.prompt_ids.size(), split);
  KvCache past;
  GenerateOptions one = GoldenOptions();
  one.max_new_tokens = 1;
  auto first = Generate(*model_, absl::MakeConstSpan(g.prompt_ids).subspan(0, split), &past, one);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(past.next_position, static_cast<int64_t>(split));
  EXPECT_EQ(past.seq_len(), static_cast<int64_t>(split));
  auto r =
      Generate(*model_, absl::MakeConstSpan(g.prompt_ids).subspan(split), &past, GoldenOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ids, g.generated_ids);
  // The cache now holds the prompt and every generated token but the last.
  EXPECT_EQ(past.next_position,
            static_cast<int64_t>(g.prompt_ids.size() + g.generated_ids.size() - 1));
}

TEST_F(GeneratorTest, PromptBeyondTheContextLimitIsRejected) {
  const GreedyGolden& g = Plain();
  GenerateOptions o = GoldenOptions();
  o.max_context = 5;
  auto r = Generate(*model_, g.prompt_ids, nullptr, o);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  {
    const std::string msg(r.status().message());
    EXPECT_NE(msg.find(std::to_string(g.prompt_ids.size())), std::string::npos) << msg;
    EXPECT_NE(msg.find("5"), std::string::npos) << msg;
  }
  const int64_t max_positions = model_->config().max_positions;
  ASSERT_GT(max_positions, 0);
  const std::vector<int32_t> too_long(max_positions + 1, 198);
  r = Generate(*model_, too_long, nullptr, GoldenOptions());
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string msg(r.status().message());
  EXPECT_NE(msg.find(std::to_string(max_positions + 1)), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(max_positions)), std::string::npos) << msg;
}

TEST_F(GeneratorTest, StopsAtTheContextLimit) {
  const GreedyGolden& g = Plain();
  GenerateOptions o = GoldenOptions();
  o.max_context = static_cast<int64_t>(g.prompt_ids.size()) + 3;
  auto r = Generate(*model_, g.prompt_ids, nullptr, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stop_reason, StopReason::kContextLimit);
  // Three tokens are fed back (positions n..n+2); the fourth is sampled from the last one.
  EXPECT_EQ(r->ids.size(), 4u);
}

TEST_F(GeneratorTest, SamplingIsDeterministicForASeed) {
  GenerateOptions o = GoldenOptions();
  o.max_new_tokens = 16;
  o.sampling.temperature = 0.8f;
  o.sampling.top_k = 40;
  o.sampling.top_p = 0.9f;
  o.sampling.repetition_penalty = 1.1f;
  o.sampling.seed = 17;
  auto a = Generate(*model_, Plain().prompt_ids, nullptr, o);
  auto b = Generate(*model_, Plain().prompt_ids, nullptr, o);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->ids, b->ids);
  EXPECT_EQ(a->text, b->text);
}

TEST_F(GeneratorTest, RejectsBadInput) {
  GenerateOptions o = GoldenOptions();
  EXPECT_EQ(Generate(*model_, {}, nullptr, o).status().code(), absl::StatusCode::kInvalidArgument);
  const std::vector<int32_t> bad_id = {1, static_cast<int32_t>(model_->config().n_vocab)};
  EXPECT_EQ(Generate(*model_, bad_id, nullptr, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.max_new_tokens = 0;
  EXPECT_EQ(Generate(*model_, Plain().prompt_ids, nullptr, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = GoldenOptions();
  o.stop_strings = {""};
  EXPECT_EQ(Generate(*model_, Plain().prompt_ids, nullptr, o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(StopReasonTest, Names) {
  EXPECT_EQ(StopReasonName(StopReason::kEos), "eos");
  EXPECT_EQ(StopReasonName(StopReason::kStopString), "stop_string");
  EXPECT_EQ(StopReasonName(StopReason::kMaxTokens), "max_tokens");
  EXPECT_EQ(StopReasonName(StopReason::kCancelled), "cancelled");
  EXPECT_EQ(StopReasonName(StopReason::kContextLimit), "context_limit");
}

}  // namespace
}  // namespace ctxmem::model
