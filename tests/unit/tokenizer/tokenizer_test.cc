#include "common/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "common/tokenizer/byte_unicode.h"
#include "tests/unit/tokenizer/tokenizer_goldens.h"

namespace ctxmem::tokenizer {
namespace {

using testing::DefaultModelPath;
using testing::FileExists;
using testing::Goldens;
using testing::Ids;
using testing::SmolTokenizerFromJson;

// The goldens must hold whichever way the tokenizer is loaded.
enum class Source { kJson, kGguf };

const Tokenizer* SmolTokenizerFromGguf() {
  static const Tokenizer* const tokenizer = []() -> const Tokenizer* {
    auto spec = testing::SmolSpecFromGguf();
    if (!spec.ok()) return nullptr;
    auto created = Tokenizer::Create(*std::move(spec));
    return created.ok() ? created->release() : nullptr;
  }();
  return tokenizer;
}

class TokenizerGoldenTest : public ::testing::TestWithParam<Source> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(Goldens().is_discarded()) << "tests/data/tokenizer/goldens.json unreadable";
    if (GetParam() == Source::kJson) {
      tokenizer_ = SmolTokenizerFromJson();
      ASSERT_NE(tokenizer_, nullptr) << "cannot load " << testing::SmolTokenizerJsonPath();
      return;
    }
    if (!FileExists(DefaultModelPath())) GTEST_SKIP() << "no model at " << DefaultModelPath();
    auto spec = testing::SmolSpecFromGguf();
    ASSERT_TRUE(spec.ok()) << spec.status();
    tokenizer_ = SmolTokenizerFromGguf();
    ASSERT_NE(tokenizer_, nullptr);
  }

  const Tokenizer* tokenizer_ = nullptr;
};

TEST_P(TokenizerGoldenTest, EncodesLikeHfTokenizers) {
  ASSERT_GE(Goldens()["cases"].size(), 20u);
  for (const auto& golden : Goldens()["cases"]) {
    const std::string name = golden["name"].get<std::string>();
    const std::string text = golden["text"].get<std::string>();
    auto ids = tokenizer_->Encode(text);
    ASSERT_TRUE(ids.ok()) << name << ": " << ids.status();
    EXPECT_EQ(*ids, Ids(golden["ids"])) << name;

    EncodeOptions plain;
    plain.parse_special = false;
    auto plain_ids = tokenizer_->Encode(text, plain);
    ASSERT_TRUE(plain_ids.ok()) << name << ": " << plain_ids.status();
    EXPECT_EQ(*plain_ids, Ids(golden["ids_no_special_parsing"])) << name;
  }
}

TEST_P(TokenizerGoldenTest, DecodesLikeHfTokenizers) {
  for (const auto& golden : Goldens()["cases"]) {
    const std::string name = golden["name"].get<std::string>();
    const std::vector<int32_t> ids = Ids(golden["ids"]);
    auto text = tokenizer_->Decode(ids);
    ASSERT_TRUE(text.ok()) << name << ": " << text.status();
    EXPECT_EQ(*text, golden["decode"].get<std::string>()) << name;
    if (name != "bytes_without_tokens") {  // those bytes are dropped
      EXPECT_EQ(*text, golden["text"].get<std::string>()) << name;
    }
    auto skipped = tokenizer_->Decode(ids, /*skip_special=*/true);
    ASSERT_TRUE(skipped.ok());
    EXPECT_EQ(*skipped, golden["decode_skip_special"].get<std::string>()) << name;
    auto plain = tokenizer_->Decode(Ids(golden["ids_no_special_parsing"]));
    ASSERT_TRUE(plain.ok());
    EXPECT_EQ(*plain, golden["decode_no_special_parsing"].get<std::string>()) << name;
  }
}

TEST_P(TokenizerGoldenTest, EncodesChatRendersLikeHfTokenizers) {
  for (const auto& chat : Goldens()["chats"]) {
    auto ids = tokenizer_->Encode(chat["rendered"].get<std::string>());
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, Ids(chat["ids"])) << chat["name"];
  }
}

// 100 KB of English prose: exact ids; the encode time is printed for the record.
TEST_P(TokenizerGoldenTest, Encodes100KbOfProseExactly) {
  const auto& golden = Goldens()["pride_and_prejudice"];
  std::string text =
      testing::ReadFile(testing::TestDataDir() + "/" + golden["path"].get<std::string>());
  ASSERT_GE(text.size(), golden["n_bytes"].get<size_t>());
  text.resize(golden["n_bytes"].get<size_t>());
  const auto start = std::chrono::steady_clock::now();
  auto ids = tokenizer_->Encode(text);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, Ids(golden["ids"]));
  auto decoded = tokenizer_->Decode(*ids);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, text);
  std::printf("[ perf ] %zu bytes -> %zu tokens in %.1f ms (%.0f tokens/s, %.1f MB/s)\n",
              text.size(), ids->size(), seconds * 1e3, ids->size() / seconds,
              text.size() / seconds / 1e6);
  // Printed, not asserted: tests never assert timings (noisy machines); see bench/.
}

INSTANTIATE_TEST_SUITE_P(Sources, TokenizerGoldenTest,
                         ::testing::Values(Source::kJson, Source::kGguf), [](const auto& info) {
                           return info.param == Source::kJson ? "Json" : "Gguf";
                         });

class TokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = SmolTokenizerFromJson();
    ASSERT_NE(tokenizer_, nullptr);
  }
  const Tokenizer* tokenizer_ = nullptr;
};

TEST_F(TokenizerTest, ReportsSpecialTokens) {
  EXPECT_EQ(tokenizer_->n_vocab(), 49152);
  EXPECT_EQ(tokenizer_->bos_id(), 1);
  EXPECT_EQ(tokenizer_->eos_id(), 2);
  EXPECT_EQ(tokenizer_->TokenId("<|im_end|>"), 2);
  EXPECT_EQ(tokenizer_->TokenId("Ġthe"), 260);
  EXPECT_EQ(tokenizer_->TokenId("no such token"), -1);
  EXPECT_TRUE(tokenizer_->IsControl(0));
  EXPECT_TRUE(tokenizer_->IsControl(16));
  EXPECT_FALSE(tokenizer_->IsControl(17));
  EXPECT_FALSE(tokenizer_->IsControl(-1));
  EXPECT_FALSE(tokenizer_->IsControl(1 << 20));
  auto bytes = tokenizer_->TokenBytes(2);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, "<|im_end|>");
  bytes = tokenizer_->TokenBytes(260);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, " the");
}

TEST_F(TokenizerTest, AddSpecialFollowsSpec) {
  // SmolLM2 sets add_bos_token=false: nothing is added.
  EncodeOptions options;
  options.add_special = true;
  auto ids = tokenizer_->Encode("hi", options);
  ASSERT_TRUE(ids.ok());
  auto plain = tokenizer_->Encode("hi");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*ids, *plain);

  TokenizerSpec spec = tokenizer_->spec();
  spec.add_bos = true;
  spec.add_eos = true;
  auto with_bos = Tokenizer::Create(std::move(spec));
  ASSERT_TRUE(with_bos.ok()) << with_bos.status();
  ids = (*with_bos)->Encode("hi", options);
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->size(), plain->size() + 2);
  EXPECT_EQ(ids->front(), 1);
  EXPECT_EQ(ids->back(), 2);
}

TEST_F(TokenizerTest, RejectsInvalidUtf8WithOffset) {
  for (const std::string& text :
       {std::string("ab\xff"), std::string("\xc3"), std::string("ok \xed\xa0\x80 surrogate"),
        std::string("\xc0\xaf overlong")}) {
    auto ids = tokenizer_->Encode(text);
    ASSERT_FALSE(ids.ok()) << text;
    EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(ids.status().message().find("byte offset"), std::string::npos);
  }
}

TEST_F(TokenizerTest, RejectsBadIds) {
  for (const int32_t id : {-1, 49152, 1 << 30}) {
    auto text = tokenizer_->Decode(std::vector<int32_t>{260, id});
    ASSERT_FALSE(text.ok()) << id;
    EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(tokenizer_->TokenBytes(id).status().code(), absl::StatusCode::kInvalidArgument);
    StreamingDecoder decoder(*tokenizer_);
    EXPECT_EQ(decoder.Push(id).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(TokenizerTest, StreamingDecodeEqualsFullDecode) {
  for (const char* name : {"chinese", "emoji", "japanese_korean", "mixed_scripts", "accents"}) {
    std::string text;
    for (const auto& golden : Goldens()["cases"]) {
      if (golden["name"] == name) text = golden["text"].get<std::string>();
    }
    ASSERT_FALSE(text.empty()) << name;
    auto ids = tokenizer_->Encode(text);
    ASSERT_TRUE(ids.ok());
    StreamingDecoder decoder(*tokenizer_);
    std::string streamed;
    size_t n_held_back = 0;  // pushes that completed no character
    for (const int32_t id : *ids) {
      auto piece = decoder.Push(id);
      ASSERT_TRUE(piece.ok());
      if (piece->empty()) ++n_held_back;
      streamed += *piece;
      // Every piece handed out is valid UTF-8 on its own.
      EXPECT_TRUE(tokenizer_->Encode(*piece).ok()) << name;
    }
    streamed += decoder.Flush();
    EXPECT_EQ(streamed, text) << name;
    if (std::string(name) == "chinese" || std::string(name) == "emoji") {
      EXPECT_GT(n_held_back, 0u) << name << ": expected tokens that split a character";
    }
  }
}

TEST_F(TokenizerTest, StreamingDecoderSkipsControlTokensAndFlushesReplacement) {
  auto ids = tokenizer_->Encode("<|im_start|>assistant\n🤗<|im_end|>");
  ASSERT_TRUE(ids.ok());
  StreamingDecoder skipping(*tokenizer_);
  StreamingDecoder keeping(*tokenizer_, /*skip_special=*/false);
  std::string skipped, kept;
  for (const int32_t id : *ids) {
    skipped += *skipping.Push(id);
    kept += *keeping.Push(id);
  }
  EXPECT_EQ(skipped + skipping.Flush(), "assistant\n🤗");
  EXPECT_EQ(kept + keeping.Flush(), "<|im_start|>assistant\n🤗<|im_end|>");

  // A character cut short by the end of the stream is flushed as U+FFFD.
  const int32_t first_byte_of_emoji = tokenizer_->TokenId("ð");  // byte 0xF0
  ASSERT_GE(first_byte_of_emoji, 0);
  StreamingDecoder truncated(*tokenizer_);
  auto piece = truncated.Push(first_byte_of_emoji);
  ASSERT_TRUE(piece.ok());
  EXPECT_EQ(*piece, "");
  EXPECT_EQ(truncated.Flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(truncated.Flush(), "");
}

// SmolLM2 has no token for bytes such as 0x1D; like HF (model.unk_token null) and llama.cpp,
// they are dropped. With bpe_unk_id set they become that token instead.
TEST_F(TokenizerTest, BytesWithoutTokensAreDroppedOrUnk) {
  ASSERT_LT(tokenizer_->TokenId(ByteToUnicode(0x1D)), 0);
  auto ids = tokenizer_->Encode(
      "a\x1d"
      "b");
  ASSERT_TRUE(ids.ok());
  auto text = tokenizer_->Decode(*ids);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "ab");

  TokenizerSpec spec = tokenizer_->spec();
  spec.bpe_unk_id = 0;
  auto with_unk = Tokenizer::Create(std::move(spec));
  ASSERT_TRUE(with_unk.ok());
  ids = (*with_unk)->Encode(
      "a\x1d"
      "b");
  ASSERT_TRUE(ids.ok());
  text = (*with_unk)->Decode(*ids);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "a<|endoftext|>b");
}

TEST_F(TokenizerTest, ParseSpecialFalseTreatsControlTextAsPlainText) {
  EncodeOptions plain;
  plain.parse_special = false;
  auto ids = tokenizer_->Encode("<|im_end|>", plain);
  ASSERT_TRUE(ids.ok());
  EXPECT_GT(ids->size(), 1u);
  for (const int32_t id : *ids) EXPECT_FALSE(tokenizer_->IsControl(id));
  auto text = tokenizer_->Decode(*ids);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "<|im_end|>");
}

// One tokenizer shared by several threads gives every thread the golden ids.
TEST_F(TokenizerTest, ConcurrentEncodesAgree) {
  std::vector<std::thread> threads;
  std::atomic<int> n_mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < 5; ++round) {
        for (const auto& golden : Goldens()["cases"]) {
          auto ids = tokenizer_->Encode(golden["text"].get<std::string>());
          if (!ids.ok() || *ids != Ids(golden["ids"])) ++n_mismatches;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(n_mismatches.load(), 0);
}

TEST(TokenizerCreateTest, RejectsBadSpecs) {
  const Tokenizer* smol = SmolTokenizerFromJson();
  ASSERT_NE(smol, nullptr);
  {
    TokenizerSpec spec = smol->spec();
    spec.pre_tokenizer = "no-such-pre";
    auto created = Tokenizer::Create(std::move(spec));
    ASSERT_FALSE(created.ok());
    EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(created.status().message().find("smollm"), std::string::npos)
        << "the error should list the known names: " << created.status();
  }
  {
    TokenizerSpec spec = smol->spec();
    spec.merges.emplace_back("Ġthe", "nonexistent-token");
    EXPECT_EQ(Tokenizer::Create(std::move(spec)).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  {
    TokenizerSpec spec = smol->spec();
    spec.tokens[100] = spec.tokens[101];
    EXPECT_EQ(Tokenizer::Create(std::move(spec)).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  {
    TokenizerSpec spec = smol->spec();
    spec.eos_id = 49152;
    EXPECT_EQ(Tokenizer::Create(std::move(spec)).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  {
    TokenizerSpec spec = smol->spec();
    spec.token_types.pop_back();
    EXPECT_EQ(Tokenizer::Create(std::move(spec)).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  {
    TokenizerSpec spec = smol->spec();
    spec.token_types[5] = static_cast<TokenType>(42);
    EXPECT_EQ(Tokenizer::Create(std::move(spec)).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(Tokenizer::Create(TokenizerSpec()).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ctxmem::tokenizer
