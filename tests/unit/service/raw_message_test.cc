#include "common/service/raw_message.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ctxmem/v1/compressor.pb.h"
#include "ctxmem/v1/decoder.pb.h"

namespace ctxmem::service {
namespace {

grpc::ByteBuffer BufferOf(const std::vector<std::string>& pieces) {
  std::vector<grpc::Slice> slices;
  for (const std::string& p : pieces) slices.emplace_back(p);
  return grpc::ByteBuffer(slices.data(), slices.size());
}

TEST(RawMessageTest, ParsesAWellFormedRequestFromOneOrManySlices) {
  v1::GenerateRequest request;
  request.set_prompt("Who has taken Netherfield Park?");
  request.add_memory_ids(std::string(64, 'a'));
  const std::string wire = request.SerializeAsString();
  for (size_t split : {size_t{0}, size_t{1}, wire.size() / 2, wire.size()}) {
    const grpc::ByteBuffer buffer = BufferOf({wire.substr(0, split), wire.substr(split)});
    absl::StatusOr<v1::GenerateRequest> parsed = ParseRawRequest<v1::GenerateRequest>(buffer);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->prompt(), request.prompt());
    EXPECT_EQ(parsed->memory_ids(0), request.memory_ids(0));
  }
  // The empty message is a valid encoding of every message (all fields default).
  EXPECT_TRUE(ParseRawRequest<v1::StatMemoryRequest>(BufferOf({""})).ok());
}

TEST(RawMessageTest, MalformedBytesAreInvalidArgumentNamingTheType) {
  for (const std::string& bad : {std::string("\x0f"),
                                 std::string("\x0a\x05"
                                             "ab"),
                                 std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
                                 std::string("\x0a\x02\xc3\x28")}) {
    absl::StatusOr<v1::StatMemoryRequest> parsed =
        ParseRawRequest<v1::StatMemoryRequest>(BufferOf({bad}));
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("ctxmem.v1.StatMemoryRequest"), std::string::npos)
        << parsed.status();
  }
  v1::ScoreRequest out;
  out.set_prompt("left over");
  EXPECT_FALSE(ParseRawMessage(absl::string_view("\x0f", 1), &out).ok());
  EXPECT_EQ(out.prompt(), "");  // never half-filled
}

TEST(RawMessageTest, SerializeRoundTrips) {
  v1::ScoreResponse response;
  response.set_n_scored(3);
  response.set_perplexity(1.5);
  grpc::ByteBuffer buffer;
  ASSERT_TRUE(SerializeRawMessage(response, &buffer).ok());
  v1::ScoreResponse back;
  ASSERT_TRUE(ParseRawMessage(buffer, &back).ok());
  EXPECT_EQ(back.n_scored(), 3);
  EXPECT_EQ(back.perplexity(), 1.5);
}

}  // namespace
}  // namespace ctxmem::service
