// DecodeBatcher on the bundled model: streams submitted together decode in shared steps and
// each gets the answer model::Generate gives it alone; limits, cancellation and shutdown.

#include "common/service/decode_batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/model/model.h"
#include "tests/unit/model/test_paths.h"

namespace ctxmem::service {
namespace {

struct Outcome {
  absl::Notification done;
  absl::StatusOr<model::GenerateResult> result = absl::UnknownError("not done");
  std::vector<int32_t> streamed;
};

class DecodeBatcherTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!ctxmem::testing::BundledModelPresent()) return;
    auto model = model::Model::Load(ctxmem::testing::BundledModelPath());
    if (model.ok()) model_ = model->release();
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << "bundled model not found";
  }

  std::vector<int32_t> Prompt(const std::string& text) {
    return model_->tokenizer()->Encode(text).value();
  }

  // A stream that records into `out`; `cancel` (may be null) is polled by the batcher.
  static BatchStream Stream(std::vector<int32_t> prompt, int64_t max_new_tokens, Outcome* out,
                            const std::atomic<bool>* cancel = nullptr) {
    BatchStream s;
    s.prompt = std::move(prompt);
    s.options.max_new_tokens = max_new_tokens;
    s.on_token = [out](int32_t id, std::string_view) {
      out->streamed.push_back(id);
      return true;
    };
    s.cancelled = [cancel] { return cancel != nullptr && cancel->load(); };
    s.on_done = [out](absl::StatusOr<model::GenerateResult> r) {
      out->result = std::move(r);
      out->done.Notify();
    };
    return s;
  }

  static model::Model* model_;
};
model::Model* DecodeBatcherTest::model_ = nullptr;

TEST_F(DecodeBatcherTest, ConcurrentStreamsGetTheAnswersTheyGetAlone) {
  const std::vector<std::string> texts = {"The capital of France is", "Once upon a time,",
                                          "1, 2, 3, 4,"};
  const std::vector<int64_t> lengths = {9, 5, 12};
  auto batcher = DecodeBatcher::Create(model_, nullptr, {});
  ASSERT_TRUE(batcher.ok()) << batcher.status();
  std::vector<Outcome> outcomes(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    ASSERT_TRUE((*batcher)->Submit(Stream(Prompt(texts[i]), lengths[i], &outcomes[i])).ok());
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    outcomes[i].done.WaitForNotification();
    ASSERT_TRUE(outcomes[i].result.ok()) << outcomes[i].result.status();
    model::GenerateOptions options;
    options.max_new_tokens = lengths[i];
    auto alone = model::Generate(*model_, Prompt(texts[i]), nullptr, options);
    ASSERT_TRUE(alone.ok()) << alone.status();
    EXPECT_EQ(outcomes[i].result->ids, alone->ids) << texts[i];
    EXPECT_EQ(outcomes[i].result->text, alone->text) << texts[i];
    EXPECT_EQ(outcomes[i].streamed, alone->ids);
  }
}

TEST_F(DecodeBatcherTest, FullQueueIsResourceExhaustedAndCancelledStreamsLeave) {
  DecodeBatcherOptions options;
  options.max_batch = 1;
  options.max_queued = 1;
  auto batcher = DecodeBatcher::Create(model_, nullptr, options);
  ASSERT_TRUE(batcher.ok());
  std::atomic<bool> cancel_a{false};
  Outcome a, b, c;
  BatchStream long_stream = Stream(Prompt("Tell me a story."), 500, &a, &cancel_a);
  long_stream.options.stop_at_eos = false;  // runs until cancelled
  ASSERT_TRUE((*batcher)->Submit(std::move(long_stream)).ok());
  while ((*batcher)->queued() > 0) absl::SleepFor(absl::Milliseconds(5));  // a is active
  ASSERT_TRUE((*batcher)->Submit(Stream(Prompt("Hello"), 3, &b)).ok());    // b waits
  const absl::Status full = (*batcher)->Submit(Stream(Prompt("Hi"), 3, &c));
  EXPECT_TRUE(absl::IsResourceExhausted(full)) << full;
  EXPECT_NE(full.message().find("max_queued 1"), std::string::npos) << full;
  cancel_a = true;
  a.done.WaitForNotification();
  ASSERT_TRUE(a.result.ok()) << a.result.status();
  EXPECT_EQ(a.result->stop_reason, model::StopReason::kCancelled);
  EXPECT_LT(a.result->ids.size(), 500u);
  b.done.WaitForNotification();  // the waiting stream got the slot
  ASSERT_TRUE(b.result.ok()) << b.result.status();
  EXPECT_EQ(b.result->ids.size(), 3u);
  EXPECT_FALSE(c.done.HasBeenNotified());  // refused at Submit: never called back
}

TEST_F(DecodeBatcherTest, BadStreamsFailAloneAndShutdownFinishesTheRest) {
  auto batcher = DecodeBatcher::Create(model_, nullptr, {});
  ASSERT_TRUE(batcher.ok());
  Outcome bad, good;
  ASSERT_TRUE((*batcher)->Submit(Stream({}, 4, &bad)).ok());  // empty prompt
  ASSERT_TRUE((*batcher)->Submit(Stream(Prompt("Good morning"), 4, &good)).ok());
  (*batcher)->Shutdown();  // drains: both streams are called back before it returns
  ASSERT_TRUE(bad.done.HasBeenNotified() && good.done.HasBeenNotified());
  EXPECT_TRUE(absl::IsInvalidArgument(bad.result.status())) << bad.result.status();
  ASSERT_TRUE(good.result.ok()) << good.result.status();
  EXPECT_EQ(good.result->ids.size(), 4u);
  Outcome late;
  EXPECT_TRUE(absl::IsFailedPrecondition((*batcher)->Submit(Stream({1}, 1, &late))));
  DecodeBatcherOptions zero;
  zero.max_batch = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(DecodeBatcher::Create(model_, nullptr, zero).status()));
}

}  // namespace
}  // namespace ctxmem::service
