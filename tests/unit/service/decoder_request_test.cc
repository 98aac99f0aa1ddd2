#include "common/service/decoder_request.h"

#include <memory>
#include <string>

#include "common/model/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/test_files.h"

namespace ctxmem::service {
namespace {

using ::testing::HasSubstr;

class DecoderRequestTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!ctxmem::testing::BundledModelPresent()) return;
    auto model = model::Model::Load(ctxmem::testing::BundledModelPath());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = model->release();
  }
  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << "bundled model not found";
  }
  const tokenizer::Tokenizer& tok() { return *model_->tokenizer(); }

  static v1::GenerateRequest Prompt(const std::string& text) {
    v1::GenerateRequest r;
    r.set_prompt(text);
    return r;
  }
  absl::StatusCode Code(const v1::GenerateRequest& r, DecoderLimits limits = {}) {
    return ParseGenerateRequest(r, tok(), limits).status().code();
  }

  static model::Model* model_;
};
model::Model* DecoderRequestTest::model_ = nullptr;

TEST_F(DecoderRequestTest, PromptDefaultsAndLimits) {
  v1::GenerateRequest r = Prompt("What is the capital of France?");
  r.add_memory_ids(std::string(64, 'b'));
  auto in = ParseGenerateRequest(r, tok(), {});
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->options.max_new_tokens, kDefaultMaxTokens);
  EXPECT_TRUE(in->options.sampling.greedy());
  EXPECT_EQ(in->options.sampling.top_p, 1.0f);
  EXPECT_EQ(in->memory_ids.size(), 1u);
  EXPECT_EQ(in->prompt_ids, *tok().Encode("What is the capital of France?"));

  DecoderLimits small;
  small.max_new_tokens = 100;
  r.set_max_tokens(101);
  auto over = ParseGenerateRequest(r, tok(), small);
  ASSERT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(over.status().message()), HasSubstr("limit of 100"));
  r.set_max_tokens(0);
  EXPECT_EQ(ParseGenerateRequest(r, tok(), small)->options.max_new_tokens, 100);
  r.set_max_tokens(-1);
  EXPECT_EQ(Code(r), absl::StatusCode::kInvalidArgument);

  small.max_prompt_tokens = 3;
  EXPECT_EQ(Code(Prompt("one two three four five six"), small),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(DecoderRequestTest, RejectsBadInput) {
  EXPECT_EQ(Code(v1::GenerateRequest()), absl::StatusCode::kInvalidArgument);  // no input
  EXPECT_EQ(Code(Prompt("")), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(Prompt("bad \xff utf8")), absl::StatusCode::kInvalidArgument);
  v1::GenerateRequest r = Prompt("hi");
  r.mutable_sampling()->set_temperature(-1);
  EXPECT_EQ(Code(r), absl::StatusCode::kInvalidArgument);
  r = Prompt("hi");
  r.mutable_sampling()->set_top_p(1.5f);
  EXPECT_EQ(Code(r), absl::StatusCode::kInvalidArgument);
  r = Prompt("hi");
  r.add_stop("");
  EXPECT_EQ(Code(r), absl::StatusCode::kInvalidArgument);
  r = Prompt("hi");
  r.add_memory_ids("not-an-id");
  auto bad_id = ParseGenerateRequest(r, tok(), {});
  ASSERT_EQ(bad_id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_id.status().message()), HasSubstr("memory_ids[0]"));
  r = Prompt("hi");
  for (int i = 0; i < 17; ++i) r.add_memory_ids(std::string(64, 'c'));
  EXPECT_EQ(Code(r), absl::StatusCode::kResourceExhausted);
  v1::GenerateRequest chat;
  chat.mutable_chat();
  EXPECT_EQ(Code(chat), absl::StatusCode::kInvalidArgument);  // no messages
  auto* m = chat.mutable_chat()->add_messages();
  m->set_role("wizard");
  m->set_content("hi");
  auto bad_role = ParseGenerateRequest(chat, tok(), {});
  ASSERT_EQ(bad_role.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_role.status().message()), HasSubstr("system, user, assistant"));
}

TEST_F(DecoderRequestTest, ChatUsesTheTemplateAndStopsAtImEnd) {
  v1::GenerateRequest r;
  auto* m = r.mutable_chat()->add_messages();
  m->set_role("user");
  m->set_content("Who is Mr. Darcy?");
  r.add_stop("\n\n");
  auto in = ParseGenerateRequest(r, tok(), {});
  ASSERT_TRUE(in.ok()) << in.status();
  auto text = tok().Decode(in->prompt_ids);
  ASSERT_TRUE(text.ok());
  EXPECT_THAT(*text, HasSubstr("<|im_start|>user\nWho is Mr. Darcy?<|im_end|>"));
  EXPECT_THAT(*text, HasSubstr("<|im_start|>assistant\n"));
  ASSERT_EQ(in->options.stop_ids.size(), 1u);
  EXPECT_EQ(in->options.stop_ids[0], tok().TokenId("<|im_end|>"));
  EXPECT_EQ(in->options.stop_strings, std::vector<std::string>{"\n\n"});
}

TEST_F(DecoderRequestTest, ScoreRequests) {
  v1::ScoreRequest r;
  r.set_text("a single man in possession of a good fortune");
  auto in = ParseScoreRequest(r, tok(), {});
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_TRUE(in->prompt_ids.empty());
  EXPECT_GE(in->continuation_ids.size(), 5u);
  r.mutable_tokens()->add_ids(5);
  in = ParseScoreRequest(r, tok(), {});  // oneof: tokens replaced the text
  EXPECT_EQ(in.status().code(), absl::StatusCode::kInvalidArgument);  // 1 token, no prompt
  r.set_prompt("Question:");
  in = ParseScoreRequest(r, tok(), {});
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->continuation_ids, std::vector<int32_t>{5});
  r.mutable_tokens()->add_ids(-3);
  EXPECT_EQ(ParseScoreRequest(r, tok(), {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseScoreRequest(v1::ScoreRequest(), tok(), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ctxmem::service
