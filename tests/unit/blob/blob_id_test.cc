#include "common/blob/blob_id.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/unit/blob/test_blob.h"

namespace ctxmem::blob {
namespace {

using testing::TempDir;
using testing::WriteBytes;

const std::vector<int32_t> kTokens = {1, 2, 300, 128000, -1};

// Computed independently with Python's hashlib over the layout documented in blob_id.h:
//   b"ctxmem.memory_id.v2\0" + <Q len + b"acme" + <Q len + b"sha256:abc" + <Q len
//   + canonical config + <i per token + <Q n_tokens.
constexpr char kGoldenId[] = "4ee3ca2a64739d570fd18561ad2f00dced7f433964a89ca8aaa403967782600f";

TEST(BlobIdTest, MatchesTheDocumentedLayout) {
  EXPECT_EQ(ComputeMemoryId("acme", "sha256:abc", R"({"b": "x", "a": [1, 2.5]})", kTokens).value(),
            kGoldenId);
}

TEST(BlobIdTest, TenantIsPartOfTheId) {
  const std::string a = ComputeMemoryId("acme", "m", "{}", kTokens).value();
  EXPECT_NE(ComputeMemoryId("other", "m", "{}", kTokens).value(), a);
  // Length prefixes keep the tenant apart from the fingerprint.
  EXPECT_NE(ComputeMemoryId("acm", "em", "{}", kTokens).value(), a);
  EXPECT_EQ(ComputeMemoryId("", "m", "{}", kTokens).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BlobIdTest, SameInputSameIdWhateverTheConfigSpelling) {
  const std::string a =
      ComputeMemoryId("t", "m", R"({"pruner":"tova","chunk_size":512})", kTokens).value();
  const std::string b =
      ComputeMemoryId("t", "m", "{\n  \"chunk_size\" : 512,\n  \"pruner\" : \"tova\"\n}", kTokens)
          .value();
  EXPECT_EQ(a, b);
  EXPECT_TRUE(IsMemoryId(a));
}

TEST(BlobIdTest, EveryComponentChangesTheId) {
  const std::string base = ComputeMemoryId("t", "m", R"({"k":1})", kTokens).value();
  EXPECT_NE(ComputeMemoryId("t", "m2", R"({"k":1})", kTokens).value(), base);
  EXPECT_NE(ComputeMemoryId("t", "m", R"({"k":2})", kTokens).value(), base);
  std::vector<int32_t> tokens = kTokens;
  tokens.back() = 7;
  EXPECT_NE(ComputeMemoryId("t", "m", R"({"k":1})", tokens).value(), base);
  tokens.pop_back();
  EXPECT_NE(ComputeMemoryId("t", "m", R"({"k":1})", tokens).value(), base);
  // Length prefixes keep field boundaries apart: moving bytes between fields changes the id.
  EXPECT_NE(ComputeMemoryId("t", "ab", R"({"k":1})", {}).value(),
            ComputeMemoryId("t", "a", R"({"k":1})", {}).value());
}

TEST(BlobIdTest, StreamingEqualsOneShotForAnySplit) {
  std::vector<int32_t> tokens(5000);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(i * 2654435761u);
  const std::string want = ComputeMemoryId("t", "m", "{}", tokens).value();
  for (size_t piece : {1u, 7u, 1024u, 1025u, 4999u}) {
    MemoryIdBuilder builder = MemoryIdBuilder::Create("t", "m", "{}").value();
    for (size_t i = 0; i < tokens.size(); i += piece) {
      const size_t n = std::min(piece, tokens.size() - i);
      ASSERT_TRUE(builder.AddTokens(std::span<const int32_t>(tokens.data() + i, n)).ok());
    }
    EXPECT_EQ(builder.n_tokens(), tokens.size());
    EXPECT_EQ(builder.Finish().value(), want) << piece;
    EXPECT_EQ(builder.Finish().status().code(), absl::StatusCode::kFailedPrecondition);
  }
}

TEST(BlobIdTest, RejectsBadConfigAndFingerprint) {
  EXPECT_EQ(ComputeMemoryId("t", "", "{}", kTokens).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ComputeMemoryId("t", "m", "[1]", kTokens).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ComputeMemoryId("t", "m", "{", kTokens).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BlobIdTest, CanonicalJson) {
  EXPECT_EQ(
      CanonicalJson(R"( { "b" : [ 1 , 2.50, 1e2 ], "a" : { "z" : null, "y" : true } } )").value(),
      R"({"a":{"y":true,"z":null},"b":[1,2.5,100.0]})");
  EXPECT_EQ(CanonicalJson(R"("é")").value(), R"("é")");
  EXPECT_EQ(CanonicalJson("\"\xff\"").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CanonicalJson("").status().code(), absl::StatusCode::kInvalidArgument);
  const std::string deep =
      std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']');
  EXPECT_EQ(CanonicalJson(deep).status().code(), absl::StatusCode::kInvalidArgument);
  const std::string ok = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_EQ(CanonicalJson(ok).value(), ok);
  EXPECT_EQ(CanonicalJson(R"({"s":"[[[[\"]]"})").value(), R"({"s":"[[[[\"]]"})");
}

TEST(BlobIdTest, FingerprintsOfFiles) {
  TempDir dir;
  ASSERT_TRUE(WriteBytes(dir.File("a.bin"), "abc"));
  ASSERT_TRUE(WriteBytes(dir.File("b.bin"), std::string(3 << 20, 'z')));  // several read chunks
  EXPECT_EQ(FingerprintFile(dir.File("a.bin")).value(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(FingerprintFile(dir.File("b.bin")).value(),
            FingerprintBytes(std::string(3 << 20, 'z')).value());
  const std::string ab = FingerprintFiles({dir.File("a.bin"), dir.File("b.bin")}).value();
  const std::string ba = FingerprintFiles({dir.File("b.bin"), dir.File("a.bin")}).value();
  EXPECT_NE(ab, ba);
  EXPECT_EQ(ab.rfind("sha256:", 0), 0u);
  EXPECT_EQ(FingerprintFile(dir.File("missing")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(FingerprintFiles({dir.File("a.bin"), dir.File("missing")}).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ctxmem::blob
