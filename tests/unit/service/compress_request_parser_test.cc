#include "common/service/compress_request_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace ctxmem::service {
namespace {

using Kind = CompressRequestPiece::Kind;

TEST(CompressRequestParserTest, ReadsEveryKindLikeProtobuf) {
  ctxmem::v1::CompressRequest start;
  start.mutable_start()->mutable_config()->set_pruner("tova");
  start.mutable_start()->set_client_label("book");
  auto p = ParseCompressRequest(start.SerializeAsString());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->kind, Kind::kStart);
  EXPECT_EQ(p->start.config().pruner(), "tova");
  EXPECT_EQ(p->start.client_label(), "book");

  ctxmem::v1::CompressRequest tokens;
  tokens.mutable_tokens()->add_ids(7);
  tokens.mutable_tokens()->add_ids(300);
  p = ParseCompressRequest(tokens.SerializeAsString());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->kind, Kind::kTokens);
  EXPECT_EQ(p->tokens.ids_size(), 2);

  ctxmem::v1::CompressRequest text;
  text.set_text("caf\xc3\xa9");
  p = ParseCompressRequest(text.SerializeAsString());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->kind, Kind::kText);
  EXPECT_EQ(p->text, "caf\xc3\xa9");

  p = ParseCompressRequest("");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->kind, Kind::kNone);
}

TEST(CompressRequestParserTest, TextMayHoldHalfACharacter) {
  // Field 2, length 1, the first byte of "é".
  const std::string wire("\x12\x01\xc3", 3);
  auto p = ParseCompressRequest(wire);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->kind, Kind::kText);
  EXPECT_EQ(p->text, "\xc3");
}

TEST(CompressRequestParserTest, MalformedWireIsInvalidArgument) {
  EXPECT_EQ(ParseCompressRequest(std::string("\x12\x05\x61", 3)).status().code(),
            absl::StatusCode::kInvalidArgument);  // length past the end
  EXPECT_EQ(ParseCompressRequest(std::string("\x0a\x02\x0a\xff", 4)).status().code(),
            absl::StatusCode::kInvalidArgument);  // start whose config does not parse
  EXPECT_EQ(ParseCompressRequest(std::string("\x0a\x03\x12\x01\xff", 5)).status().code(),
            absl::StatusCode::kInvalidArgument);  // client_label that is not UTF-8
  // Unknown fields are skipped.
  auto p = ParseCompressRequest(std::string("\x20\x05\x12\x01\x61", 5));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->text, "a");
}

}  // namespace
}  // namespace ctxmem::service
