#include "common/service/compress_job.h"

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/blob/file_blob_store.h"
#include "common/model/model.h"
#include "tests/unit/blob/test_blob.h"
#include "tests/unit/model/test_paths.h"

namespace ctxmem::service {
namespace {

class CompressJobTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!ctxmem::testing::BundledModelPresent()) return;
    auto model = model::Model::Load(ctxmem::testing::BundledModelPath());
    if (!model.ok()) return;
    model_ = model->release();
    identity_ = new compress::ModelIdentity(
        compress::ComputeModelIdentity(*model_, "SmolLM2-135M-Instruct").value());
  }

  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << "bundled model not found";
    blob::FileBlobStoreOptions options;
    options.dir = dir_.File("store");
    store_ = blob::FileBlobStore::Open(options).value();
    env_.model = model_;
    env_.identity = *identity_;
    env_.store = store_.get();
    env_.config_limits.model_name = "SmolLM2-135M-Instruct";
    env_.config_limits.max_positions = 8192;
    env_.max_context_tokens = 2000;
    env_.max_text_bytes = 32000;
    std::ifstream in(ctxmem::testing::TestDataPath("text/pride_and_prejudice.txt"));
    std::stringstream text;
    text << in.rdbuf();
    text_ = text.str().substr(0, 1200);
  }

  ctxmem::v1::CompressStart Start() const {
    ctxmem::v1::CompressStart start;
    start.mutable_config()->set_chunk_size(64);
    start.mutable_config()->set_memory_size(32);
    start.mutable_config()->set_kv_dtype("f16");
    start.set_client_label("p&p");
    return start;
  }

  std::unique_ptr<CompressJob> NewJob(const std::string& tenant = "alice") {
    return CompressJob::Create(env_, Start(), tenant, "rid").value();
  }

  static inline model::Model* model_ = nullptr;  // shared by the suite, never freed
  static inline compress::ModelIdentity* identity_ = nullptr;
  blob::testing::TempDir dir_;
  std::unique_ptr<blob::FileBlobStore> store_;
  CompressJobEnv env_;
  std::string text_;
};

TEST_F(CompressJobTest, CompressesStoresAndAnswersTheSameInputAtOnce) {
  auto job = NewJob();
  // Pieces that split a multi-byte character ("é" is 2 bytes) still form the same text.
  const std::string text = text_ + " caf\xc3\xa9.";
  ASSERT_TRUE(job->AddText(text.substr(0, text.size() - 2)).ok());
  ASSERT_TRUE(job->AddText(text.substr(text.size() - 2)).ok());
  ASSERT_FALSE(job->Prepare().value());
  std::vector<ctxmem::v1::CompressProgress> progress;
  auto outcome = job->Run([&](const auto& p) { progress.push_back(p); }, [] { return false; });
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_FALSE(outcome->existed);
  const ctxmem::v1::MemoryInfo& m = outcome->memory;
  EXPECT_EQ(m.memory_id(), job->memory_id());
  EXPECT_EQ(m.n_original_tokens(), job->n_tokens());
  ASSERT_EQ(m.n_kept_size(), 30);
  EXPECT_EQ(m.n_kept(0), 36);  // 32 + 4 sinks
  EXPECT_EQ(m.client_label(), "p&p");
  EXPECT_GT(m.compression_ratio(), 5.0);
  EXPECT_EQ(m.blob_bytes(), store_->Stat(m.memory_id(), "alice")->n_bytes);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().tokens_read(), job->n_tokens());
  EXPECT_EQ(progress.back().memory_len(), 36);

  auto again = NewJob();
  ASSERT_TRUE(again->AddText(text).ok());
  ASSERT_TRUE(again->Prepare().value());  // existed: nothing to compute
  EXPECT_TRUE(again->outcome().existed);
  EXPECT_EQ(again->outcome().memory.memory_id(), m.memory_id());
  EXPECT_EQ(again->outcome().memory.blob_bytes(), m.blob_bytes());

  auto other_tenant = NewJob("bob");
  ASSERT_TRUE(other_tenant->AddText(text).ok());
  ASSERT_FALSE(other_tenant->Prepare().value());
  EXPECT_NE(other_tenant->memory_id(), m.memory_id());
}

TEST_F(CompressJobTest, AppendsToABaseOfTheSameTenant) {
  std::vector<int32_t> a(128), b(100);
  for (int i = 0; i < 128; ++i) a[i] = (i * 97 + 5) % 4000 + 10;
  for (int i = 0; i < 100; ++i) b[i] = (i * 31 + 7) % 4000 + 10;
  auto base_job = NewJob();
  ASSERT_TRUE(base_job->AddTokens(a).ok());
  ASSERT_FALSE(base_job->Prepare().value());
  auto base = base_job->Run(nullptr, nullptr);
  ASSERT_TRUE(base.ok()) << base.status();
  const std::string base_id = base->memory.memory_id();

  ctxmem::v1::CompressStart start;  // no config: the base's
  start.set_base_memory_id(base_id);
  auto job = CompressJob::Create(env_, start, "alice", "rid2");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ((*job)->config().canonical_json, base_job->config().canonical_json);
  ASSERT_TRUE((*job)->AddTokens(b).ok());
  ASSERT_FALSE((*job)->Prepare().value());
  std::vector<ctxmem::v1::CompressProgress> progress;
  auto appended = (*job)->Run([&](const auto& p) { progress.push_back(p); }, nullptr);
  ASSERT_TRUE(appended.ok()) << appended.status();
  EXPECT_NE(appended->memory.memory_id(), base_id);
  EXPECT_EQ(appended->memory.n_original_tokens(), 228);
  EXPECT_EQ(progress.size(), 2u);  // only the new tokens' chunks ran (C = 64)
  EXPECT_EQ(progress.back().tokens_read(), 100);
  EXPECT_TRUE(store_->Stat(base_id, "alice").ok());  // the base stays

  // Another tenant's base is NOT_FOUND; a different config is INVALID_ARGUMENT.
  EXPECT_EQ(CompressJob::Create(env_, start, "bob", "rid3").status().code(),
            absl::StatusCode::kNotFound);
  ctxmem::v1::CompressStart other = Start();
  other.mutable_config()->set_memory_size(16);
  other.set_base_memory_id(base_id);
  EXPECT_EQ(CompressJob::Create(env_, other, "alice", "rid4").status().code(),
            absl::StatusCode::kInvalidArgument);
  ctxmem::v1::CompressStart same = Start();  // the base's own config is fine
  same.set_base_memory_id(base_id);
  EXPECT_TRUE(CompressJob::Create(env_, same, "alice", "rid5").ok());
  start.set_base_memory_id("zz");
  EXPECT_EQ(CompressJob::Create(env_, start, "alice", "rid6").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CompressJobTest, CancelledJobLeavesNoBlobAndNoStagingFile) {
  auto job = NewJob();
  ASSERT_TRUE(job->AddText(text_).ok());
  ASSERT_FALSE(job->Prepare().value());
  int chunks = 0;
  auto outcome = job->Run([&](const auto&) { ++chunks; }, [&] { return chunks >= 2; });
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kCancelled) << outcome.status();
  EXPECT_EQ(chunks, 2);  // stopped within one chunk of the request
  EXPECT_EQ(store_->n_blobs(), 0);
  EXPECT_TRUE(blob::testing::ListFiles(store_->staging_dir()).empty());
}

TEST_F(CompressJobTest, InvalidUtf8IsRefusedNamingTheByteOffset) {
  auto job = NewJob();
  ASSERT_TRUE(job->AddText("hello ").ok());
  const absl::Status s = job->AddText("w\xff");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("byte offset 7"), std::string::npos) << s;

  auto cut = NewJob();
  ASSERT_TRUE(cut->AddText("ok \xc3").ok());  // may be completed by the next piece
  const absl::Status end = cut->Prepare().status();
  EXPECT_EQ(end.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(end.message().find("byte offset 3"), std::string::npos) << end;
}

TEST_F(CompressJobTest, InputErrorsAndLimits) {
  auto empty = NewJob();
  EXPECT_EQ(empty->Prepare().status().code(), absl::StatusCode::kInvalidArgument);

  auto mixed = NewJob();
  ASSERT_TRUE(mixed->AddTokens(std::vector<int32_t>{1, 2}).ok());
  EXPECT_EQ(mixed->AddText("x").code(), absl::StatusCode::kInvalidArgument);

  auto bad_id = NewJob();
  const absl::Status s = bad_id->AddTokens(std::vector<int32_t>{1, 49152});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("index 1"), std::string::npos) << s;

  auto many = NewJob();
  EXPECT_EQ(many->AddTokens(std::vector<int32_t>(2001, 5)).code(),
            absl::StatusCode::kResourceExhausted);
  auto long_text = NewJob();
  EXPECT_EQ(long_text->AddText(std::string(32001, 'a')).code(),
            absl::StatusCode::kResourceExhausted);

  ctxmem::v1::CompressStart start = Start();
  start.set_expected_tokens(5000);
  EXPECT_EQ(CompressJob::Create(env_, start, "alice", "r").status().code(),
            absl::StatusCode::kResourceExhausted);
  start = Start();
  start.set_client_label(std::string(300, 'x'));
  EXPECT_EQ(CompressJob::Create(env_, start, "alice", "r").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CompressJobTest, TokenIdsAndTheirTextGiveOneMemory) {
  auto by_text = NewJob();
  ASSERT_TRUE(by_text->AddText(text_).ok());
  ASSERT_FALSE(by_text->Prepare().value());
  tokenizer::EncodeOptions options;
  options.parse_special = false;
  const std::vector<int32_t> ids = model_->tokenizer()->Encode(text_, options).value();
  auto by_ids = NewJob();
  ASSERT_TRUE(by_ids->AddTokens(std::span(ids).subspan(0, 10)).ok());
  ASSERT_TRUE(by_ids->AddTokens(std::span(ids).subspan(10)).ok());
  ASSERT_FALSE(by_ids->Prepare().value());
  EXPECT_EQ(by_ids->memory_id(), by_text->memory_id());
}

}  // namespace
}  // namespace ctxmem::service
