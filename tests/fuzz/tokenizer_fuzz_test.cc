// Robustness of the tokenizer on hostile input: random bytes and near-valid text to Encode,
// random ids (in and out of range) to Decode and StreamingDecoder, and truncated, corrupted or
// structurally wrong tokenizer.json files and GGUF tokenizer metadata. Every case must end in
// an OK result that round-trips or a clean error; never a crash, an out-of-bounds read (ASan)
// or undefined behaviour (UBSan). Seeds are fixed, so failures reproduce.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/tokenizer/byte_unicode.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/tokenizer_spec.h"
#include "common/tokenizer/utf8.h"
#include "common/weights/gguf_file.h"
#include "nlohmann/json.hpp"
#include "tests/unit/weights/test_files.h"

namespace ctxmem::tokenizer {
namespace {

using Json = nlohmann::json;
using weights::GgufValueType;
using weights::testing::GgufWriter;
using weights::testing::ReadBytes;
using weights::testing::TempDir;
using weights::testing::WriteBytes;

std::string DataDir() { return std::string(CTXMEM_TEST_DATA_DIR) + "/tokenizer"; }

std::unique_ptr<Tokenizer> LoadTokenizer(const std::string& path) {
  auto spec = TokenizerSpecFromJson(path);
  if (!spec.ok()) return nullptr;
  auto tokenizer = Tokenizer::Create(*std::move(spec));
  return tokenizer.ok() ? *std::move(tokenizer) : nullptr;
}

// The tokenizers under test: two small ones (Llama 3 and Qwen2 layouts) and SmolLM2.
std::vector<const Tokenizer*> Tokenizers() {
  static const auto* const owned = new std::vector<std::unique_ptr<Tokenizer>>([] {
    std::vector<std::unique_ptr<Tokenizer>> tokenizers;
    tokenizers.push_back(LoadTokenizer(DataDir() + "/tiny_llama3/tokenizer.json"));
    tokenizers.push_back(LoadTokenizer(DataDir() + "/tiny_qwen2/tokenizer.json"));
    tokenizers.push_back(LoadTokenizer(DataDir() + "/smollm2_tokenizer.json"));
    return tokenizers;
  }());
  std::vector<const Tokenizer*> out;
  for (const auto& tokenizer : *owned) out.push_back(tokenizer.get());
  return out;
}

// Text made to reach the corners: raw bytes, or code points from the classes the regexes and
// the special-token matcher care about, optionally with one byte damaged.
std::string RandomText(std::mt19937& rng) {
  static const std::vector<std::string> kPieces = {"a",
                                                   "Z",
                                                   "é",
                                                   "ß",
                                                   "ſ",
                                                   "K",
                                                   " ",
                                                   "  ",
                                                   "\t",
                                                   "\n",
                                                   "\r\n",
                                                   "\u0085",
                                                   "\u00a0",
                                                   "\u180e",
                                                   "\u3000",
                                                   "\u2028",
                                                   "\u200b",
                                                   "0",
                                                   "7",
                                                   "²",
                                                   "٣",
                                                   "Ⅻ",
                                                   "中",
                                                   "日本",
                                                   "🤗",
                                                   "👨‍👩‍👧",
                                                   "\u0301",
                                                   "'s",
                                                   "'LL",
                                                   "'",
                                                   "\"",
                                                   "!?",
                                                   "<|im_start|>",
                                                   "<|im_end|>",
                                                   "<|endoftext|>",
                                                   "<|begin_of_text|>",
                                                   "<|im_",
                                                   "|>",
                                                   "<",
                                                   "\xEF\xBF\xBD",
                                                   std::string("\0", 1)};
  std::string text;
  const int mode = static_cast<int>(rng() % 3);
  const size_t n = rng() % 40;
  if (mode == 0) {
    for (size_t i = 0; i < n; ++i) text.push_back(static_cast<char>(rng()));
    return text;
  }
  for (size_t i = 0; i < n; ++i) text += kPieces[rng() % kPieces.size()];
  if (mode == 2 && !text.empty()) text[rng() % text.size()] = static_cast<char>(rng());
  return text;
}

TEST(TokenizerFuzzTest, EncodeRandomTextRoundTripsOrIsInvalidArgument) {
  std::mt19937 rng(1234);
  for (const Tokenizer* tokenizer : Tokenizers()) {
    ASSERT_NE(tokenizer, nullptr);
    for (int i = 0; i < 700; ++i) {
      const std::string text = RandomText(rng);
      EncodeOptions options;
      options.parse_special = rng() % 2 == 0;
      auto ids = tokenizer->Encode(text, options);
      if (FindInvalidUtf8(text) >= 0) {
        ASSERT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
        continue;
      }
      ASSERT_TRUE(ids.ok()) << ids.status();
      auto decoded = tokenizer->Decode(*ids);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      // Byte-level BPE is lossless where every byte has a token; SmolLM2 lacks a few (0x1D,
      // ...), which are dropped, as in HF.
      const bool has_every_byte = std::all_of(text.begin(), text.end(), [&](char c) {
        return tokenizer->TokenId(ByteToUnicode(static_cast<uint8_t>(c))) >= 0;
      });
      if (has_every_byte) {
        ASSERT_EQ(*decoded, text);
      }
    }
  }
}

TEST(TokenizerFuzzTest, DecodeRandomIdsNeverFailsOnValidIds) {
  std::mt19937 rng(99);
  for (const Tokenizer* tokenizer : Tokenizers()) {
    ASSERT_NE(tokenizer, nullptr);
    const int32_t n_vocab = tokenizer->n_vocab();
    for (int i = 0; i < 400; ++i) {
      std::vector<int32_t> ids(rng() % 24);
      bool all_valid = true;
      for (int32_t& id : ids) {
        const uint32_t r = rng();
        id = r % 16 == 0 ? static_cast<int32_t>(r) : static_cast<int32_t>(r % (n_vocab + 8)) - 4;
        all_valid = all_valid && id >= 0 && id < n_vocab;
      }
      const bool skip_special = rng() % 2 == 0;
      auto text = tokenizer->Decode(ids, skip_special);
      ASSERT_EQ(text.ok(), all_valid) << text.status();
      if (!all_valid) {
        EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
      }

      // Streaming hands out valid UTF-8 only and, over a valid stream, what Decode gives.
      StreamingDecoder decoder(*tokenizer, skip_special);
      std::string streamed;
      bool stream_ok = true;
      for (const int32_t id : ids) {
        auto piece = decoder.Push(id);
        if (!piece.ok()) {
          EXPECT_EQ(piece.status().code(), absl::StatusCode::kInvalidArgument);
          stream_ok = false;
          continue;
        }
        ASSERT_EQ(FindInvalidUtf8(*piece), -1);
        streamed += *piece;
      }
      const std::string tail = decoder.Flush();
      ASSERT_EQ(FindInvalidUtf8(tail), -1);
      streamed += tail;
      EXPECT_EQ(stream_ok, all_valid);
      if (all_valid) {
        EXPECT_EQ(streamed, Utf8Lossy(*text));
      }
    }
  }
}

// Whatever TokenizerSpecFromJson accepts must build a tokenizer or be refused by Create, and a
// built one must encode.
void Exercise(absl::StatusOr<TokenizerSpec> spec) {
  if (!spec.ok()) return;
  auto tokenizer = Tokenizer::Create(*std::move(spec));
  if (!tokenizer.ok()) return;
  auto ids = (*tokenizer)->Encode("Hello <|im_start|> wörld 123 🤗\n");
  ASSERT_TRUE(ids.ok()) << ids.status();
  auto text = (*tokenizer)->Decode(*ids);
  ASSERT_TRUE(text.ok()) << text.status();
}

// Replaces one randomly chosen node of `json` (walking down from the root) with a random value,
// or removes it from its object.
void MutateJson(Json* json, std::mt19937& rng) {
  Json* node = json;
  for (int depth = 0; depth < 6 && (node->is_object() || node->is_array()) && !node->empty();
       ++depth) {
    if (rng() % 4 == 0) break;
    if (node->is_object()) {
      auto it = node->begin();
      std::advance(it, rng() % node->size());
      if (rng() % 8 == 0) {
        node->erase(it);
        return;
      }
      node = &it.value();
    } else {
      node = &(*node)[rng() % node->size()];
    }
  }
  switch (rng() % 8) {
    case 0:
      *node = nullptr;
      break;
    case 1:
      *node = -static_cast<int64_t>(rng());
      break;
    case 2:
      *node = static_cast<uint64_t>(rng()) << 32;
      break;
    case 3:
      *node = "<|im_start|>";
      break;
    case 4:
      *node = Json::array({"a", 1});
      break;
    case 5:
      *node = Json::object({{"type", "Sequence"}});
      break;
    case 6:
      *node = rng() % 2 == 0;
      break;
    default:
      *node = 0.5;
      break;
  }
}

TEST(TokenizerFuzzTest, MalformedTokenizerJsonIsAnError) {
  const std::string seed = ReadBytes(DataDir() + "/tiny_qwen2/tokenizer.json");
  ASSERT_GT(seed.size(), 1000u);
  const Json seed_json = Json::parse(seed, nullptr, false);
  ASSERT_FALSE(seed_json.is_discarded());
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.File("tokenizer.json");
  std::mt19937 rng(7);
  auto check = [&](const std::string& bytes) {
    ASSERT_TRUE(WriteBytes(path, bytes));
    Exercise(TokenizerSpecFromJson(path));
  };

  for (int i = 0; i < 30; ++i) check(seed.substr(0, rng() % seed.size()));
  for (int i = 0; i < 50; ++i) {
    std::string bytes = seed;
    for (int k = 0, n = 1 + static_cast<int>(rng() % 8); k < n; ++k) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    check(bytes);
  }
  for (int i = 0; i < 100; ++i) {
    Json json = seed_json;
    for (int k = 0, n = 1 + static_cast<int>(rng() % 3); k < n; ++k) MutateJson(&json, rng);
    check(json.dump(-1, ' ', false, Json::error_handler_t::replace));
  }
  check(std::string(100000, '['));
  check("{\"model\": " + std::string(50000, '{'));
  check(std::string("\0\0\0", 3));

  // A malformed tokenizer_config.json beside a valid tokenizer.json.
  for (int i = 0; i < 15; ++i) {
    Json config = {{"bos_token", "<|im_start|>"},
                   {"eos_token", {{"content", "<|im_end|>"}}},
                   {"add_bos_token", true},
                   {"chat_template", "<|im_start|>"}};
    MutateJson(&config, rng);
    ASSERT_TRUE(WriteBytes(dir.File("tokenizer_config.json"), config.dump()));
    check(seed);
  }
}

// GGUF tokenizer metadata built by hand: every key with wrong types, lengths and values.
TEST(TokenizerFuzzTest, MalformedGgufTokenizerMetadataIsAnError) {
  auto spec = TokenizerSpecFromJson(DataDir() + "/tiny_llama3/tokenizer.json");
  ASSERT_TRUE(spec.ok()) << spec.status();
  std::vector<std::string> merges;
  for (const auto& [left, right] : spec->merges) merges.push_back(left + " " + right);
  std::vector<int32_t> types(spec->tokens.size(), 1);
  types[0] = 3;
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.File("model.gguf");
  std::mt19937 rng(11);

  for (int variant = 0; variant < 120; ++variant) {
    const int broken = variant < 40 ? variant % 20 : -1;  // then random byte damage
    GgufWriter w;
    w.AddString("general.architecture", "llama");
    if (broken == 0) {
      w.AddString("tokenizer.ggml.model", "llama");
    } else if (broken == 1) {
      w.AddScalar<uint32_t>("tokenizer.ggml.model", GgufValueType::kUint32, 7);
    } else if (broken != 2) {
      w.AddString("tokenizer.ggml.model", "gpt2");
    }
    w.AddString("tokenizer.ggml.pre", broken == 3 ? "nope" : "llama-bpe");
    if (broken == 4) {
      w.AddArray<int32_t>("tokenizer.ggml.tokens", GgufValueType::kInt32, types);
    } else if (broken == 5) {
      w.AddStringArray("tokenizer.ggml.tokens", {});
    } else if (broken == 6) {
      std::vector<std::string> tokens = spec->tokens;
      tokens[5] = tokens[6];
      w.AddStringArray("tokenizer.ggml.tokens", tokens);
    } else {
      w.AddStringArray("tokenizer.ggml.tokens", spec->tokens);
    }
    if (broken == 7) {
      w.AddArray<int32_t>("tokenizer.ggml.token_type", GgufValueType::kInt32,
                          std::vector<int32_t>(3, 1));
    } else if (broken == 8) {
      std::vector<int32_t> bad = types;
      bad[rng() % bad.size()] = rng() % 2 == 0 ? -1 : 99;
      w.AddArray<int32_t>("tokenizer.ggml.token_type", GgufValueType::kInt32, bad);
    } else if (broken == 9) {
      w.AddStringArray("tokenizer.ggml.token_type", {"x"});
    } else {
      w.AddArray<int32_t>("tokenizer.ggml.token_type", GgufValueType::kInt32, types);
    }
    if (broken == 10) {
      w.AddStringArray("tokenizer.ggml.merges", {"nospace"});
    } else if (broken == 11) {
      w.AddStringArray("tokenizer.ggml.merges", {"zz qq"});
    } else if (broken != 12) {
      w.AddStringArray("tokenizer.ggml.merges", merges);
    }
    const uint32_t bos = broken == 13 ? 1u << 30 : 0;
    w.AddScalar<uint32_t>("tokenizer.ggml.bos_token_id", GgufValueType::kUint32, bos);
    if (broken == 14) {
      w.AddScalar<int32_t>("tokenizer.ggml.eos_token_id", GgufValueType::kInt32, -2);
    } else if (broken == 15) {
      w.AddString("tokenizer.ggml.eos_token_id", "1");
    }
    if (broken == 16)
      w.AddScalar<float>("tokenizer.ggml.add_bos_token", GgufValueType::kFloat32, 1);
    if (broken == 17) w.AddScalar<uint32_t>("tokenizer.chat_template", GgufValueType::kUint32, 0);
    std::string bytes = w.Build();
    if (broken < 0) {
      for (int k = 0, n = 1 + static_cast<int>(rng() % 6); k < n; ++k) {
        bytes[rng() % bytes.size()] = static_cast<char>(rng());
      }
    }
    ASSERT_TRUE(WriteBytes(path, bytes));
    auto file = weights::GgufFile::Open(path);
    if (!file.ok()) continue;
    auto read = TokenizerSpecFromGguf(**file);
    if (broken >= 0 && broken <= 17 && broken != 3 && broken != 6 && broken != 11) {
      EXPECT_FALSE(read.ok()) << "variant " << broken << " should be refused";
    }
    if (read.ok() && (broken == 3 || broken == 6 || broken == 11)) {
      EXPECT_FALSE(Tokenizer::Create(*read).ok()) << "variant " << broken;
    }
    Exercise(std::move(read));
  }
}

}  // namespace
}  // namespace ctxmem::tokenizer
