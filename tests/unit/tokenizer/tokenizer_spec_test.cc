#include "common/tokenizer/tokenizer_spec.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/tokenizer/tokenizer.h"
#include "tests/unit/tokenizer/tokenizer_goldens.h"

namespace ctxmem::tokenizer {
namespace {

using testing::DefaultModelPath;
using testing::FileExists;
using testing::Goldens;
using testing::Ids;

TEST(TokenizerSpecFromJsonTest, ReadsSmolLm2) {
  auto spec = TokenizerSpecFromJson(testing::SmolTokenizerJsonPath());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->tokens.size(), 49152u);
  EXPECT_EQ(spec->token_types.size(), 49152u);
  EXPECT_EQ(spec->merges.size(), 48900u);
  EXPECT_EQ(spec->merges[0], (std::pair<std::string, std::string>("Ġ", "t")));
  EXPECT_EQ(spec->pre_tokenizer, "smollm");
  EXPECT_EQ(spec->tokens[1], "<|im_start|>");
  EXPECT_EQ(spec->token_types[1], TokenType::kControl);
  EXPECT_EQ(spec->token_types[17], TokenType::kNormal);
  EXPECT_EQ(spec->bos_id, 1);
  EXPECT_EQ(spec->eos_id, 2);
  EXPECT_EQ(spec->unk_id, 0);
  EXPECT_EQ(spec->pad_id, 2);
  EXPECT_EQ(spec->bpe_unk_id, -1);  // model.unk_token is null
  EXPECT_FALSE(spec->add_bos);
  EXPECT_FALSE(spec->add_eos);
  EXPECT_FALSE(spec->ignore_merges);
  EXPECT_NE(spec->chat_template.find("<|im_start|>"), std::string::npos);
}

// The two readers must agree on the real model: same vocabulary, merges, types, ids, template.
TEST(TokenizerSpecFromGgufTest, MatchesTheJsonSpec) {
  if (!FileExists(DefaultModelPath())) GTEST_SKIP() << "no model at " << DefaultModelPath();
  auto from_gguf = testing::SmolSpecFromGguf();
  ASSERT_TRUE(from_gguf.ok()) << from_gguf.status();
  auto from_json = TokenizerSpecFromJson(testing::SmolTokenizerJsonPath());
  ASSERT_TRUE(from_json.ok()) << from_json.status();
  EXPECT_EQ(from_gguf->tokens, from_json->tokens);
  EXPECT_EQ(from_gguf->token_types, from_json->token_types);
  EXPECT_EQ(from_gguf->merges, from_json->merges);
  EXPECT_EQ(from_gguf->pre_tokenizer, "smollm");
  EXPECT_EQ(from_gguf->bos_id, from_json->bos_id);
  EXPECT_EQ(from_gguf->eos_id, from_json->eos_id);
  EXPECT_EQ(from_gguf->unk_id, from_json->unk_id);
  EXPECT_EQ(from_gguf->pad_id, from_json->pad_id);
  EXPECT_EQ(from_gguf->bpe_unk_id, from_json->bpe_unk_id);
  EXPECT_EQ(from_gguf->add_bos, from_json->add_bos);
  EXPECT_EQ(from_gguf->add_eos, from_json->add_eos);
  EXPECT_EQ(from_gguf->ignore_merges, from_json->ignore_merges);
  EXPECT_EQ(from_gguf->chat_template, from_json->chat_template);
}

// Llama 3 and Qwen2 layouts: Split(Regex) + ByteLevel(use_regex=false), ignore_merges,
// TemplateProcessing BOS, NFC normalizer; ids must match HF for every golden text.
class TinyTokenizerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TinyTokenizerTest, ReadsLayoutAndEncodesLikeHf) {
  ASSERT_FALSE(Goldens().is_discarded());
  const auto& tiny = Goldens()["tiny"][GetParam()];
  auto spec = TokenizerSpecFromJson(testing::TestDataDir() + "/tokenizer/" +
                                    tiny["path"].get<std::string>());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->pre_tokenizer, GetParam());
  EXPECT_EQ(static_cast<int>(spec->tokens.size()), tiny["n_vocab"].get<int>());
  const bool is_llama3 = GetParam() == "llama3";
  EXPECT_EQ(spec->ignore_merges, is_llama3);
  EXPECT_EQ(spec->add_bos, is_llama3);
  EXPECT_EQ(spec->bos_id, is_llama3 ? 0 : -1);
  auto tokenizer = Tokenizer::Create(*std::move(spec));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  ASSERT_GE(tiny["cases"].size(), 20u);
  for (const auto& golden : tiny["cases"]) {
    const std::string text = golden["text"].get<std::string>();
    auto ids = (*tokenizer)->Encode(text);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, Ids(golden["ids"])) << golden["name"];
    EncodeOptions options;
    options.add_special = true;
    ids = (*tokenizer)->Encode(text, options);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*ids, Ids(golden["ids_add_special"])) << golden["name"];
    auto decoded = (*tokenizer)->Decode(Ids(golden["ids"]));
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, text);
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, TinyTokenizerTest, ::testing::Values("llama3", "qwen2"),
                         [](const auto& info) { return info.param; });

class TokenizerJsonErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ctxmem_tokenizer_spec_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `json` as tokenizer.json and returns the status of reading it.
  absl::Status Read(const std::string& json) {
    const std::string path = (dir_ / "tokenizer.json").string();
    std::ofstream(path, std::ios::binary) << json;
    return TokenizerSpecFromJson(path).status();
  }

  static std::string Minimal(const std::string& pre_tokenizer, const std::string& extra = "") {
    return R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
               "merges": ["a b"]}, "pre_tokenizer": )" +
           pre_tokenizer + extra + "}";
  }

  std::filesystem::path dir_;
};

TEST_F(TokenizerJsonErrorTest, AcceptsMinimalByteLevel) {
  EXPECT_TRUE(Read(Minimal(R"({"type": "ByteLevel", "add_prefix_space": false})")).ok());
}

TEST_F(TokenizerJsonErrorTest, RejectsMalformedFiles) {
  const std::string byte_level = R"({"type": "ByteLevel", "add_prefix_space": false})";
  const std::vector<std::string> bad = {
      "",
      "{",
      "[]",
      "{\"model\": 3}",
      Minimal(R"({"type": "Whitespace"})"),
      Minimal(R"({"type": "ByteLevel", "add_prefix_space": true})"),
      Minimal(R"({"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern":
                 {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false},
                 {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})"),
      Minimal(byte_level, R"(, "normalizer": {"type": "Lowercase"})"),
      Minimal(byte_level, R"(, "decoder": {"type": "WordPiece"})"),
      Minimal(byte_level, R"(, "added_tokens": [{"id": 2, "content": "zz", "special": true}])"),
      Minimal(byte_level, R"(, "added_tokens": [{"id": 3, "content": "<s>", "lstrip": true}])"),
      Minimal(byte_level, R"(, "added_tokens": [{"id": 9, "content": "<s>"}])"),
      R"({"model": {"type": "Unigram", "vocab": [], "merges": []}, "pre_tokenizer": null})",
      R"({"model": {"vocab": {"a": 0, "b": 0}, "merges": []}, "pre_tokenizer":
         {"type": "ByteLevel", "add_prefix_space": false}})",
      R"({"model": {"vocab": {"a": -1}, "merges": []}, "pre_tokenizer":
         {"type": "ByteLevel", "add_prefix_space": false}})",
      R"({"model": {"vocab": {"a": 0}, "merges": ["ab"]}, "pre_tokenizer":
         {"type": "ByteLevel", "add_prefix_space": false}})",
      R"({"model": {"vocab": {"a": 0}, "merges": [["a"]]}, "pre_tokenizer":
         {"type": "ByteLevel", "add_prefix_space": false}})",
      R"({"model": {"vocab": {"a": "0"}, "merges": []}, "pre_tokenizer":
         {"type": "ByteLevel", "add_prefix_space": false}})",
      R"({"model": {"vocab": {"a": 0}, "merges": [], "byte_fallback": true}, "pre_tokenizer":
         {"type": "ByteLevel", "add_prefix_space": false}})",
  };
  for (const std::string& json : bad) {
    const absl::Status status = Read(json);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << json << "\n" << status;
  }
}

TEST_F(TokenizerJsonErrorTest, ReadsConfigBeside) {
  std::ofstream(dir_ / "tokenizer_config.json")
      << R"({"bos_token": {"content": "a"}, "eos_token": "ab", "add_bos_token": true,
            "chat_template": [{"name": "default", "template": "<|im_start|>"}]})";
  const std::string path = (dir_ / "tokenizer.json").string();
  std::ofstream(path) << Minimal(R"({"type": "ByteLevel", "add_prefix_space": false})");
  auto spec = TokenizerSpecFromJson(path);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->bos_id, 0);
  EXPECT_EQ(spec->eos_id, 2);
  EXPECT_TRUE(spec->add_bos);
  EXPECT_EQ(spec->chat_template, "<|im_start|>");

  std::ofstream(dir_ / "tokenizer_config.json") << R"({"bos_token": "<not in vocab>"})";
  EXPECT_EQ(TokenizerSpecFromJson(path).status().code(), absl::StatusCode::kInvalidArgument);
  std::ofstream(dir_ / "tokenizer_config.json") << "not json";
  EXPECT_EQ(TokenizerSpecFromJson(path).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenizerJsonErrorTest, MissingFileIsNotFound) {
  EXPECT_EQ(TokenizerSpecFromJson((dir_ / "absent.json").string()).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ctxmem::tokenizer
