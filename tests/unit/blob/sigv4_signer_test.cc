#include "common/blob/sigv4_signer.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "common/blob/sha256.h"
#include "nlohmann/json.hpp"
#include "tests/unit/test_files.h"

namespace ctxmem::blob {
namespace {

std::string VectorsPath() {
  const char* env = std::getenv("CTXMEM_TEST_DATA_DIR");
  if (env != nullptr && *env != '\0') return std::string(env) + "/sigv4/vectors.json";
#ifdef CTXMEM_TEST_DATA_DIR
  return std::string(CTXMEM_TEST_DATA_DIR) + "/sigv4/vectors.json";
#else
  return "tests/data/sigv4/vectors.json";
#endif
}

// Every published case (tests/data/sigv4/README.md names the sources) signs to the published
// Authorization header, and where the source prints them, to its canonical request and string
// to sign.
TEST(SigV4SignerTest, MatchesPublishedVectors) {
  const std::string text = ctxmem::testing::ReadBytes(VectorsPath());
  const nlohmann::json vectors = nlohmann::json::parse(text, nullptr, false);
  ASSERT_FALSE(vectors.is_discarded()) << VectorsPath();
  int n_cases = 0;
  for (const nlohmann::json& c : vectors["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const nlohmann::json& creds = vectors["credentials"][c["source"].get<std::string>()];
    SigV4Request request;
    request.method = c["method"];
    request.path = c["path"];
    for (const auto& q : c["query"]) request.query.emplace_back(q[0], q[1]);
    for (const auto& h : c["headers"]) request.headers.emplace_back(h[0], h[1]);
    request.payload_sha256 = Sha256Hex(c["payload"].get<std::string>()).value();
    SigV4Options options;
    options.region = creds["region"];
    options.service = creds["service"];
    options.normalize_path = c["normalize_path"];
    const SigV4Signature sig =
        SignV4(request, {creds["access_key_id"], creds["secret_access_key"], ""}, options,
               creds["amz_date"].get<std::string>())
            .value();
    if (c.contains("canonical_request")) {
      EXPECT_EQ(sig.canonical_request, c["canonical_request"].get<std::string>());
    }
    if (c.contains("canonical_request_sha256")) {
      EXPECT_EQ(Sha256Hex(sig.canonical_request).value(),
                c["canonical_request_sha256"].get<std::string>());
    }
    if (c.contains("string_to_sign")) {
      EXPECT_EQ(sig.string_to_sign, c["string_to_sign"].get<std::string>());
    }
    EXPECT_EQ(sig.authorization, c["authorization"].get<std::string>());
    ++n_cases;
  }
  EXPECT_EQ(n_cases, 12);
}

TEST(SigV4SignerTest, AnyChangedInputChangesTheSignature) {
  SigV4Request request;
  request.method = "GET";
  request.path = "/bucket/key";
  request.headers = {{"Host", "localhost:8333"}, {"x-amz-date", "20260101T000000Z"}};
  const SigV4Credentials creds{"AK", "SK", ""};
  const std::string base = SignV4(request, creds, {}, "20260101T000000Z")->signature;
  SigV4Request other = request;
  other.path = "/bucket/key2";
  EXPECT_NE(SignV4(other, creds, {}, "20260101T000000Z")->signature, base);
  other = request;
  other.query = {{"x-id", "1"}};
  EXPECT_NE(SignV4(other, creds, {}, "20260101T000000Z")->signature, base);
  EXPECT_NE(SignV4(request, {"AK", "SK2", ""}, {}, "20260101T000000Z")->signature, base);
  SigV4Options region;
  region.region = "eu-west-1";
  EXPECT_NE(SignV4(request, creds, region, "20260101T000000Z")->signature, base);
  EXPECT_NE(SignV4(request, creds, {}, "20260102T000000Z")->signature, base);
}

TEST(SigV4SignerTest, S3KeysAreEncodedOnceAndNeverNormalized) {
  SigV4Request request;
  request.method = "GET";
  request.path = "/b/a/./x y+z%/ሴ";
  request.headers = {{"Host", "h"}};
  const SigV4Signature sig = SignV4(request, {"AK", "SK", ""}, {}, "20260101T000000Z").value();
  EXPECT_EQ(sig.canonical_request.substr(0, sig.canonical_request.find('\n', 4)),
            "GET\n/b/a/./x%20y%2Bz%25/%E1%88%B4");
}

TEST(SigV4SignerTest, RejectsMalformedInput) {
  SigV4Request request;
  request.method = "GET";
  request.path = "/";
  const SigV4Credentials creds{"AK", "SK", ""};
  EXPECT_EQ(SignV4(request, creds, {}, "2026-01-01").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SignV4(request, {"", "SK", ""}, {}, "20260101T000000Z").status().code(),
            absl::StatusCode::kInvalidArgument);
  SigV4Request bad = request;
  bad.path = "no-slash";
  EXPECT_EQ(SignV4(bad, creds, {}, "20260101T000000Z").status().code(),
            absl::StatusCode::kInvalidArgument);
  bad = request;
  bad.headers = {{"bad name", "v"}};
  EXPECT_EQ(SignV4(bad, creds, {}, "20260101T000000Z").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SigV4SignerTest, FormatsAmzDate) {
  EXPECT_EQ(AmzDate(1440938160), "20150830T123600Z");
  EXPECT_EQ(UriEncode("a b/c~", true), "a%20b/c~");
  EXPECT_EQ(UriEncode("a b/c~", false), "a%20b%2Fc~");
}

}  // namespace
}  // namespace ctxmem::blob
