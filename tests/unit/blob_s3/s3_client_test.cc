// S3Client against a real S3 server (SeaweedFS on loopback, one per test binary).
#include "common/blob/s3_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/blob/sha256.h"
#include "tests/unit/blob_s3/seaweed_server.h"

namespace ctxmem::blob {
namespace {

using testing::SeaweedServer;
using testing::SharedSeaweed;

class S3ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    server_ = SharedSeaweed(&why);
    if (server_ == nullptr) GTEST_SKIP() << why;
    client_ = *S3Client::Create(server_->ClientOptions());
    prefix_ = absl::StrCat("client-test/",
                           ::testing::UnitTest::GetInstance()->current_test_info()->name(), "/");
  }
  std::string Key(const std::string& name) const { return prefix_ + name; }

  SeaweedServer* server_ = nullptr;
  std::unique_ptr<S3Client> client_;
  std::string prefix_;
};

std::string Pattern(size_t n, int salt) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + salt) & 0xff);
  return s;
}

TEST_F(S3ClientTest, PutGetHeadDelete) {
  const std::string body = Pattern(1000, 1);
  ASSERT_TRUE(client_->PutObject(Key("a"), body, {{"sha256", "abc"}}, false).ok());
  const S3Object head = client_->HeadObject(Key("a")).value();
  EXPECT_EQ(head.size, 1000u);
  EXPECT_EQ(head.metadata.at("sha256"), "abc");
  EXPECT_GT(head.last_modified_unix_ms, 1'600'000'000'000);
  std::string got;
  ASSERT_TRUE(client_->GetObject(Key("a"), 0, 0, &got).ok());
  EXPECT_EQ(got, body);
  ASSERT_TRUE(client_->DeleteObject(Key("a")).ok());
  EXPECT_EQ(client_->HeadObject(Key("a")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->GetObject(Key("a"), 0, 0, &got).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(client_->DeleteObject(Key("a")).ok());  // S3: deleting nothing is fine
}

// Records what the client reports (the servers' metrics are fed the same way).
class RecordingObserver final : public S3Observer {
 public:
  struct Seen {
    std::string op;
    long http_status;
    uint64_t bytes_sent, bytes_received;
    double seconds;
  };
  void OnAttempt(const S3Attempt& a) override {
    absl::MutexLock lock(&mu_);
    attempts_.push_back(
        {std::string(a.op), a.http_status, a.bytes_sent, a.bytes_received, a.seconds});
  }
  void OnRetry(absl::string_view op) override {
    absl::MutexLock lock(&mu_);
    retries_.emplace_back(op);
  }
  void OnResume(absl::string_view op) override {
    absl::MutexLock lock(&mu_);
    resumes_.emplace_back(op);
  }
  std::vector<Seen> attempts() {
    absl::MutexLock lock(&mu_);
    return attempts_;
  }
  std::vector<std::string> retries() {
    absl::MutexLock lock(&mu_);
    return retries_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Seen> attempts_;
  std::vector<std::string> retries_, resumes_;
};

TEST_F(S3ClientTest, ObserverSeesEveryAttemptWithOpStatusAndBytes) {
  RecordingObserver observer;
  S3ClientOptions options = server_->ClientOptions();
  options.observer = &observer;
  auto client = *S3Client::Create(options);
  const std::string body = Pattern(3000, 7);
  ASSERT_TRUE(client->PutObject(Key("o"), body, {}, false).ok());
  std::string got;
  ASSERT_TRUE(client->GetObject(Key("o"), 0, 0, &got).ok());
  EXPECT_EQ(client->HeadObject(Key("missing")).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(client->ListObjectsV2(prefix_, "", "", 10).ok());
  ASSERT_TRUE(client->DeleteObject(Key("o")).ok());
  const std::vector<RecordingObserver::Seen> seen = observer.attempts();
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[0].op, "put");
  EXPECT_EQ(seen[0].http_status, 200);
  EXPECT_EQ(seen[0].bytes_sent, body.size());
  EXPECT_EQ(seen[1].op, "get");
  EXPECT_EQ(seen[1].http_status, 200);
  EXPECT_EQ(seen[1].bytes_received, body.size());
  EXPECT_EQ(seen[2].op, "head");
  EXPECT_EQ(seen[2].http_status, 404);
  EXPECT_EQ(seen[3].op, "list");
  EXPECT_EQ(seen[3].http_status, 200);
  EXPECT_GT(seen[3].bytes_received, 0u);  // the XML listing
  EXPECT_EQ(seen[4].op, "delete");
  EXPECT_EQ(seen[4].http_status / 100, 2);
  for (const auto& s : seen) EXPECT_GT(s.seconds, 0) << s.op;
  EXPECT_TRUE(observer.retries().empty());
}

TEST_F(S3ClientTest, ObserverSeesRetriesOfAnUnreachableServer) {
  RecordingObserver observer;
  S3ClientOptions options = server_->ClientOptions();
  options.endpoint = "http://127.0.0.1:1";  // nothing listens there
  options.max_attempts = 3;
  options.backoff_initial = std::chrono::milliseconds(10);
  options.observer = &observer;
  auto client = *S3Client::Create(options);
  EXPECT_EQ(client->HeadObject("x").status().code(), absl::StatusCode::kUnavailable);
  const std::vector<RecordingObserver::Seen> seen = observer.attempts();
  ASSERT_EQ(seen.size(), 3u);
  for (const auto& s : seen) {
    EXPECT_EQ(s.op, "head");
    EXPECT_EQ(s.http_status, 0);  // no answer
  }
  EXPECT_EQ(observer.retries(), (std::vector<std::string>{"head", "head"}));
}

TEST_F(S3ClientTest, IfNoneMatchRefusesASecondPut) {
  ASSERT_TRUE(client_->PutObject(Key("once"), "first", {}, true).ok());
  EXPECT_EQ(client_->PutObject(Key("once"), "second", {}, true).code(),
            absl::StatusCode::kAlreadyExists);
  std::string got;
  ASSERT_TRUE(client_->GetObject(Key("once"), 0, 0, &got).ok());
  EXPECT_EQ(got, "first");
}

TEST_F(S3ClientTest, RangedGets) {
  const std::string body = Pattern(5000, 2);
  ASSERT_TRUE(client_->PutObject(Key("r"), body, {}, false).ok());
  std::string got = "x";  // appended to
  const S3Object object = client_->GetObject(Key("r"), 100, 50, &got).value();
  EXPECT_EQ(got, "x" + body.substr(100, 50));
  EXPECT_EQ(object.size, 5000u);  // the whole object's size, from Content-Range
  got.clear();
  ASSERT_TRUE(client_->GetObject(Key("r"), 4990, 0, &got).ok());
  EXPECT_EQ(got, body.substr(4990));
  got.clear();  // a range past the end is clipped, as S3 does
  ASSERT_TRUE(client_->GetObject(Key("r"), 4000, 64 << 10, &got).ok());
  EXPECT_EQ(got, body.substr(4000));
  EXPECT_EQ(client_->GetObject(Key("r"), 6000, 0, &got).status().code(),
            absl::StatusCode::kOutOfRange);
}

TEST_F(S3ClientTest, ListPagesWithContinuationAndStartAfter) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(client_->PutObject(Key(absl::StrCat("k", i)), "v", {}, false).ok());
  }
  std::vector<std::string> keys;
  std::string token;
  int n_pages = 0;
  do {
    const S3ListPage page = client_->ListObjectsV2(prefix_, "", token, 2).value();
    for (const S3Object& o : page.objects) keys.push_back(o.key.substr(prefix_.size()));
    token = page.truncated ? page.next_continuation_token : "";
    ++n_pages;
  } while (!token.empty());
  EXPECT_EQ(keys, (std::vector<std::string>{"k0", "k1", "k2", "k3", "k4"}));
  EXPECT_EQ(n_pages, 3);
  const S3ListPage after = client_->ListObjectsV2(prefix_, Key("k2"), "", 10).value();
  ASSERT_EQ(after.objects.size(), 2u);
  EXPECT_EQ(after.objects[0].key, Key("k3"));
  EXPECT_FALSE(after.truncated);
}

TEST_F(S3ClientTest, MultipartUploadIsInvisibleUntilComplete) {
  const std::string part1 = Pattern(5 << 20, 3), part2 = Pattern(1234, 4);
  const std::string upload = client_->CreateMultipartUpload(Key("mp"), {{"sha256", "s"}}).value();
  const std::string e1 = client_->UploadPart(Key("mp"), upload, 1, part1).value();
  const std::string e2 = client_->UploadPart(Key("mp"), upload, 2, part2).value();
  EXPECT_EQ(client_->HeadObject(Key("mp")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(client_->ListObjectsV2(prefix_, "", "", 10)->objects.empty());
  ASSERT_TRUE(client_->CompleteMultipartUpload(Key("mp"), upload, {{1, e1}, {2, e2}}, true).ok());
  std::string got;
  const S3Object object = client_->GetObject(Key("mp"), 0, 0, &got).value();
  EXPECT_EQ(got.size(), part1.size() + part2.size());
  EXPECT_TRUE(got == part1 + part2);
  EXPECT_EQ(object.metadata.at("sha256"), "s");

  // An aborted upload leaves nothing.
  const std::string aborted = client_->CreateMultipartUpload(Key("gone"), {}).value();
  ASSERT_TRUE(client_->UploadPart(Key("gone"), aborted, 1, part2).ok());
  ASSERT_TRUE(client_->AbortMultipartUpload(Key("gone"), aborted).ok());
  EXPECT_EQ(client_->HeadObject(Key("gone")).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(S3ClientTest, WrongSecretIsPermissionDenied) {
  S3ClientOptions options = server_->ClientOptions();
  options.credentials.secret_access_key = "not-the-secret";
  auto client = *S3Client::Create(options);
  const absl::Status status = client->PutObject(Key("denied"), "x", {}, false);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_EQ(client_->HeadObject(Key("denied")).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(S3ClientTest, UnreachableServerIsUnavailableAfterRetries) {
  S3ClientOptions options = server_->ClientOptions();
  options.endpoint = "http://127.0.0.1:1";  // nothing listens there
  options.max_attempts = 3;
  options.backoff_initial = std::chrono::milliseconds(10);
  auto client = *S3Client::Create(options);
  const absl::Status status = client->HeadObject("x").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(status.message().find("3 attempts"), absl::string_view::npos) << status;
  EXPECT_EQ(client->stats().n_requests, 3);
  EXPECT_EQ(client->stats().n_retries, 2);
}

TEST_F(S3ClientTest, RejectsBadOptions) {
  S3ClientOptions options = server_->ClientOptions();
  options.bucket = "Bad_Bucket";
  EXPECT_EQ(S3Client::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = server_->ClientOptions();
  options.credentials = {};
  EXPECT_EQ(S3Client::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = server_->ClientOptions();
  options.endpoint = "ftp://x";
  EXPECT_EQ(S3Client::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
}

// kill -9 of the server in the middle of a (throttled) download, and a restart on the same
// data: the client retries and resumes with a Range from where the body broke.
TEST_F(S3ClientTest, GetResumesAcrossAServerRestart) {
  const std::string body = Pattern(24 << 20, 5);
  ASSERT_TRUE(client_->PutObject(Key("big"), body, {}, false).ok());
  S3ClientOptions options = server_->ClientOptions();
  options.max_recv_bytes_per_second = 8 << 20;  // ~3 s for the whole object
  options.max_attempts = 30;  // ~30 s of retries: enough for a restart on a busy machine
  options.backoff_initial = std::chrono::milliseconds(100);
  options.backoff_max = std::chrono::milliseconds(1000);
  auto slow = *S3Client::Create(options);
  std::atomic<bool> restarted{false};
  std::string why;
  std::thread chaos([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    restarted = server_->Restart(&why);
  });
  std::string got;
  const absl::StatusOr<S3Object> object = slow->GetObject(Key("big"), 0, 0, &got);
  chaos.join();
  ASSERT_TRUE(restarted) << why;
  ASSERT_TRUE(object.ok()) << object.status();
  EXPECT_EQ(got.size(), body.size());
  EXPECT_TRUE(got == body);
  EXPECT_GE(slow->stats().n_resumes, 1);
  EXPECT_GE(slow->stats().n_retries, 1);
}

// No endpoint: AWS, virtual-hosted by region; an endpoint: path-style unless asked otherwise.
TEST(S3ClientAddressingTest, AwsIsVirtualHostedOthersPathStyle) {
  S3ClientOptions options;
  options.bucket = "my-bucket";
  options.region = "eu-west-1";
  options.credentials = {"AK", "SK", ""};
  EXPECT_EQ((*S3Client::Create(options))->Describe(),
            "s3://my-bucket at https://my-bucket.s3.eu-west-1.amazonaws.com");
  options.endpoint = "http://127.0.0.1:8333/";
  EXPECT_EQ((*S3Client::Create(options))->Describe(), "s3://my-bucket at http://127.0.0.1:8333");
  options.virtual_hosted = true;
  options.endpoint = "https://minio.example";
  EXPECT_EQ((*S3Client::Create(options))->Describe(),
            "s3://my-bucket at https://my-bucket.minio.example");
}

}  // namespace
}  // namespace ctxmem::blob
