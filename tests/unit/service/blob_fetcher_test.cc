#include "common/service/blob_fetcher.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/blob/test_blob.h"
#include "tests/unit/service/decoder_fake_compressor.h"

namespace ctxmem::service {
namespace {

using testing::FakeCompressor;
using ::testing::HasSubstr;

const std::string kId = std::string(63, '0') + "7";
const std::string kAliceToken = "alice-token-0123456789";
const std::string kBobToken = "bob-token-0123456789ab";

std::string Blob() { return blob::testing::SealTestBlob(weights::StDtype::kBF16, 2, 64, 0, kId); }

std::unique_ptr<BlobFetcher> MakeFetcher(std::vector<std::string> addresses,
                                         blob::BlobExpectations expect = {}) {
  BlobFetcherOptions options;
  options.addresses = std::move(addresses);
  options.expect = std::move(expect);
  options.fetch_timeout = std::chrono::milliseconds(5000);
  options.stat_timeout = std::chrono::milliseconds(2000);
  auto fetcher = BlobFetcher::Create(options);
  EXPECT_TRUE(fetcher.ok()) << fetcher.status();
  return fetcher.ok() ? *std::move(fetcher) : nullptr;
}

// An address where nothing listens any more.
std::string DeadAddress() {
  FakeCompressor dead;
  EXPECT_TRUE(dead.Start());
  const std::string address = dead.address();
  dead.Stop();
  return address;
}

TEST(BlobFetcherTest, DownloadsInChunksAndVerifies) {
  FakeCompressor server;
  server.Add("default", kId, Blob());
  ASSERT_TRUE(server.Start());
  auto fetcher = MakeFetcher({server.address()});
  FetchStats stats;
  auto blob = fetcher->Fetch(kId, "", &stats);
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_EQ(blob->bytes, Blob());
  EXPECT_EQ(blob->memory_id, kId);
  EXPECT_EQ(blob->info.metadata.memory_id, kId);
  EXPECT_EQ(stats.replica, server.address());
  EXPECT_EQ(stats.bytes_received, Blob().size());
  EXPECT_EQ(stats.n_resumes, 0);
  EXPECT_GT(Blob().size(), 4 * server.chunk_bytes);  // really several chunks
}

TEST(BlobFetcherTest, ResumesABrokenStreamFromTheLastOffset) {
  FakeCompressor server;
  server.Add("default", kId, Blob());
  server.break_streams = 1;
  ASSERT_TRUE(server.Start());
  auto fetcher = MakeFetcher({server.address()});
  FetchStats stats;
  auto blob = fetcher->Fetch(kId, "", &stats);
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_EQ(blob->bytes, Blob());
  EXPECT_EQ(stats.n_resumes, 1);
  EXPECT_EQ(server.get_calls.load(), 2);
  EXPECT_EQ(server.last_offset.load(), 2 * server.chunk_bytes);  // resumed, not restarted
  EXPECT_EQ(stats.bytes_received, Blob().size());
}

TEST(BlobFetcherTest, GivesUpAfterTooManyBrokenStreams) {
  FakeCompressor server;
  server.Add("default", kId, Blob());
  server.break_streams = 100;
  server.chunk_bytes = 256;
  ASSERT_TRUE(server.Start());
  auto fetcher = MakeFetcher({server.address()});
  auto blob = fetcher->Fetch(kId, "");
  EXPECT_EQ(blob.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(server.get_calls.load(), 4);  // the first try + max_resumes
}

TEST(BlobFetcherTest, AWrongFinalChecksumIsDataLoss) {
  FakeCompressor server;
  server.Add("default", kId, Blob());
  server.wrong_checksum = true;
  ASSERT_TRUE(server.Start());
  auto blob = MakeFetcher({server.address()})->Fetch(kId, "");
  ASSERT_EQ(blob.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(blob.status().message()), HasSubstr("checksum"));
}

TEST(BlobFetcherTest, ACorruptBlobWithAMatchingServerChecksumIsDataLoss) {
  std::string bad = Blob();
  bad[bad.size() - 5] ^= 0x11;  // the server hashes what it has: only the blob's own check sees it
  FakeCompressor server;
  server.Add("default", kId, bad);
  ASSERT_TRUE(server.Start());
  auto blob = MakeFetcher({server.address()})->Fetch(kId, "");
  EXPECT_EQ(blob.status().code(), absl::StatusCode::kDataLoss);
}

TEST(BlobFetcherTest, ABlobForAnotherModelIsFailedPrecondition) {
  FakeCompressor server;
  server.Add("default", kId, Blob());
  ASSERT_TRUE(server.Start());
  blob::BlobExpectations expect;
  expect.model_fingerprint = "sha256:the-decoders-model";
  auto blob = MakeFetcher({server.address()}, expect)->Fetch(kId, "");
  ASSERT_EQ(blob.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(blob.status().message()), HasSubstr("sha256:the-decoders-model"));
  EXPECT_THAT(std::string(blob.status().message()), HasSubstr("sha256:test-model"));

  expect.model_fingerprint = "sha256:test-model";
  expect.tokenizer_fingerprint = "sha256:another-tokenizer";
  blob = MakeFetcher({server.address()}, expect)->Fetch(kId, "");
  ASSERT_EQ(blob.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(blob.status().message()), HasSubstr("tokenizer"));
}

TEST(BlobFetcherTest, FailsOverToTheNextReplica) {
  FakeCompressor live;
  live.Add("default", kId, Blob());
  ASSERT_TRUE(live.Start());
  const std::string dead = DeadAddress();
  for (const auto& addresses : {std::vector<std::string>{dead, live.address()},
                                std::vector<std::string>{live.address(), dead}}) {
    auto fetcher = MakeFetcher(addresses);
    FetchStats stats;
    auto blob = fetcher->Fetch(kId, "", &stats);
    ASSERT_TRUE(blob.ok()) << blob.status();
    EXPECT_EQ(stats.replica, live.address());
    auto info = fetcher->Stat(kId, "");
    ASSERT_TRUE(info.ok()) << info.status();
  }
  // A replica without the blob is skipped too.
  FakeCompressor empty;
  ASSERT_TRUE(empty.Start());
  auto fetcher = MakeFetcher({empty.address(), live.address()});
  ASSERT_TRUE(fetcher->Fetch(kId, "").ok());
}

TEST(BlobFetcherTest, NoReplicaReachableIsUnavailableAndNoneHavingItIsNotFound) {
  auto down = MakeFetcher({DeadAddress(), DeadAddress()});
  EXPECT_EQ(down->Fetch(kId, "").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(down->Stat(kId, "").status().code(), absl::StatusCode::kUnavailable);
  FakeCompressor a, b;
  ASSERT_TRUE(a.Start() && b.Start());
  auto fetcher = MakeFetcher({a.address(), b.address()});
  auto blob = fetcher->Fetch(kId, "");
  ASSERT_EQ(blob.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(blob.status().message()), HasSubstr(kId));
  EXPECT_EQ(fetcher->Stat(kId, "").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(a.get_calls.load() + b.get_calls.load(), 2);
}

TEST(BlobFetcherTest, ForwardsTheCallersAuthorization) {
  FakeCompressor server;
  server.tokens = {{kAliceToken, "alice"}, {kBobToken, "bob"}};
  server.Add("alice", kId, Blob());
  ASSERT_TRUE(server.Start());
  auto fetcher = MakeFetcher({server.address()});
  EXPECT_TRUE(fetcher->Fetch(kId, "Bearer " + kAliceToken).ok());
  EXPECT_TRUE(fetcher->Stat(kId, "Bearer " + kAliceToken).ok());
  EXPECT_EQ(fetcher->Fetch(kId, "Bearer " + kBobToken).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(fetcher->Stat(kId, "Bearer " + kBobToken).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fetcher->Fetch(kId, "").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(fetcher->Stat(kId, "Bearer wrong-token-0123456789").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(BlobFetcherTest, RejectsMalformedIdsWithoutCalling) {
  FakeCompressor server;
  ASSERT_TRUE(server.Start());
  auto fetcher = MakeFetcher({server.address()});
  EXPECT_EQ(fetcher->Fetch("xyz", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fetcher->Stat(std::string(64, 'G'), "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server.get_calls.load() + server.stat_calls.load(), 0);
  EXPECT_EQ(BlobFetcher::Create({}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ctxmem::service
