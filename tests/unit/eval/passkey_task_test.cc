#include "common/eval/passkey_task.h"

#include <cmath>
#include <iostream>
#include <memory>
#include <string>

#include "common/model/model.h"
#include "common/tokenizer/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/model/test_paths.h"

namespace ctxmem::eval {
namespace {

using ::testing::HasSubstr;

TEST(PasskeyTaskTest, RandomPasskeyIsFiveDigitsAndReproducible) {
  for (uint64_t i = 0; i < 50; ++i) {
    const std::string key = RandomPasskey(7, i);
    ASSERT_EQ(key.size(), 5u) << key;
    EXPECT_EQ(key.find_first_not_of("0123456789"), std::string::npos);
    EXPECT_EQ(key, RandomPasskey(7, i));
  }
  EXPECT_NE(RandomPasskey(7, 0), RandomPasskey(8, 0));
}

// The bundled model's tokenizer (skipped without it): one load for every test of the suite.
class PasskeyModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!ctxmem::testing::BundledModelPresent()) return;
    auto m = model::Model::Load(ctxmem::testing::BundledModelPath());
    if (m.ok()) model_ = m->release();
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << "bundled model not found";
  }
  static const tokenizer::Tokenizer& tok() { return *model_->tokenizer(); }

  static model::Model* model_;
};
model::Model* PasskeyModelTest::model_ = nullptr;

TEST_F(PasskeyModelTest, PromptFitsTheLengthWithTheKeyAtTheDepth) {
  for (double depth : {0.0, 0.5, 1.0}) {
    auto p = BuildPasskeyPrompt(tok(), 1000, depth, "48213");
    ASSERT_TRUE(p.ok()) << p.status();
    const int64_t total = static_cast<int64_t>(p->context.size() + p->question.size());
    EXPECT_LE(total, 1000);
    EXPECT_GT(total, 1000 - 30);  // one filler repetition is about 25 tokens
    EXPECT_NEAR(p->depth, depth, 0.05) << depth;
    auto text = tok().Decode(p->context);
    ASSERT_TRUE(text.ok());
    EXPECT_THAT(*text, HasSubstr("The pass key is 48213. Remember it. 48213 is the pass key."));
    auto from_key =
        tok().Decode(std::vector<int32_t>(p->context.begin() + p->key_begin, p->context.end()));
    ASSERT_TRUE(from_key.ok());
    EXPECT_EQ(from_key->rfind(" The pass key is 48213", 0), 0u) << *from_key;
    auto question = tok().Decode(p->question);
    ASSERT_TRUE(question.ok());
    EXPECT_EQ(*question, "\nWhat is the pass key? The pass key is");
  }
}

TEST_F(PasskeyModelTest, RejectsBadInputNamingIt) {
  auto short_prompt = BuildPasskeyPrompt(tok(), 20, 0.5, "12345");
  EXPECT_EQ(short_prompt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(short_prompt.status().message()), HasSubstr("length=20 is too short"));
  EXPECT_THAT(std::string(BuildPasskeyPrompt(tok(), 500, 1.5, "1").status().message()),
              HasSubstr("depth=1.5"));
  EXPECT_THAT(std::string(BuildPasskeyPrompt(tok(), 500, 0.5, "12a").status().message()),
              HasSubstr("'12a'"));
  PasskeyOptions o;
  o.depths = {0.5, -0.1};
  EXPECT_THAT(std::string(o.Validate().message()), HasSubstr("depth -0.1"));
}

// Without compression (no_compress) the whole prompt is the past: the run must produce one
// trial per cell with consistent bookkeeping; the answer is recorded whatever it is.
TEST_F(PasskeyModelTest, RunRecordsEveryTrial) {
  PasskeyOptions o;
  o.lengths = {160};
  o.depths = {0.0, 1.0};
  o.max_new_tokens = 8;
  o.config.pruner = "no_compress";
  o.config.chunk_size = 64;
  int64_t calls = 0;
  auto r = RunPasskey(*model_, o, [&](const PasskeyProgress& p) {
    ++calls;
    EXPECT_EQ(p.total, 2);
  });
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->trials.size(), 2u);
  EXPECT_EQ(calls, 2);
  for (const PasskeyTrial& t : r->trials) {
    EXPECT_EQ(t.memory_len, t.n_context_tokens);  // no_compress keeps everything
    EXPECT_EQ(t.correct, t.answer.find(t.passkey) != std::string::npos);
    std::cout << "depth " << t.depth << " key " << t.passkey << " answer '" << t.answer << "'\n";
  }
  const double acc = r->Accuracy(160, 0.0);
  EXPECT_TRUE(acc == 0.0 || acc == 1.0);
  EXPECT_TRUE(std::isnan(r->Accuracy(999, 0.0)));
  nlohmann::json j = PasskeyResultToJson(*r, o);
  EXPECT_EQ(j["cells"].size(), 1u);
  EXPECT_EQ(j["cells"][0].size(), 2u);
  EXPECT_EQ(j["trials"].size(), 2u);
  EXPECT_THAT(PasskeyResultToMarkdown(*r, o), HasSubstr("| 160 |"));
}

}  // namespace
}  // namespace ctxmem::eval
