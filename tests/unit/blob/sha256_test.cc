#include "common/blob/sha256.h"

#include <gtest/gtest.h>

#include <string>

namespace ctxmem::blob {
namespace {

// FIPS 180-2 test vectors.
constexpr char kEmptySha[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kAbcSha[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(Sha256Test, MatchesKnownVectors) {
  EXPECT_EQ(Sha256Hex("").value(), kEmptySha);
  EXPECT_EQ(Sha256Hex("abc").value(), kAbcSha);
}

TEST(Sha256Test, IncrementalEqualsOneShot) {
  const std::string text = "the quick brown fox jumps over the lazy dog, many times over";
  for (size_t split = 0; split <= text.size(); split += 7) {
    Sha256 sha = Sha256::Create().value();
    ASSERT_TRUE(sha.Update(absl::string_view(text).substr(0, split)).ok());
    ASSERT_TRUE(sha.Update(absl::string_view(text).substr(split)).ok());
    EXPECT_EQ(sha.FinishHex().value(), Sha256Hex(text).value()) << split;
  }
}

TEST(Sha256Test, UpdateU64IsLittleEndian) {
  Sha256 sha = Sha256::Create().value();
  ASSERT_TRUE(sha.UpdateU64(0x0807060504030201ull).ok());
  EXPECT_EQ(sha.FinishHex().value(),
            Sha256Hex(std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8)).value());
}

TEST(Sha256Test, FinishTwiceIsFailedPrecondition) {
  Sha256 sha = Sha256::Create().value();
  ASSERT_TRUE(sha.Finish().ok());
  EXPECT_EQ(sha.Finish().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(sha.Update("x").code(), absl::StatusCode::kFailedPrecondition);
}

TEST(Sha256Test, HexHelpers) {
  const uint8_t bytes[] = {0x00, 0x0f, 0xa5, 0xff};
  EXPECT_EQ(ToHex(bytes, 4), "000fa5ff");
  EXPECT_TRUE(IsSha256Hex(kAbcSha));
  EXPECT_FALSE(IsSha256Hex(std::string(kAbcSha).substr(1)));
  std::string upper = kAbcSha;
  upper[0] = 'B';
  EXPECT_FALSE(IsSha256Hex(upper));
}

}  // namespace
}  // namespace ctxmem::blob
