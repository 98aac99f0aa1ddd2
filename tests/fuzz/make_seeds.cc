// Writes the seed corpora under tests/fuzz/corpus/<target>/ with the project's own writers
// (GGUF and safetensors test writers, the blob sealer, protobuf): small valid inputs, plus a few
// near misses, so fuzzing starts past the first checks. Deterministic; the output is committed.
//   build-fuzz/tests/fuzz/fuzz_make_seeds tests/fuzz/corpus
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ctxmem/v1/compressor.pb.h"
#include "ctxmem/v1/decoder.pb.h"
#include "ctxmem/v1/memory.pb.h"
#include "tests/unit/blob/test_blob.h"
#include "tests/unit/weights/test_files.h"

namespace {

namespace fs = std::filesystem;
using namespace ctxmem;
std::string g_root;

// A string literal with its embedded NULs.
template <size_t N>
std::string Lit(const char (&s)[N]) {
  return std::string(s, N - 1);
}

void Seed(const std::string& target, const std::string& name, const std::string& bytes) {
  const fs::path dir = fs::path(g_root) / target;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void GgufSeeds() {
  using weights::GgmlType;
  using VT = weights::GgufValueType;
  weights::testing::GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddScalar<uint32_t>("llama.block_count", VT::kUint32, 2);
  w.AddScalar<float>("f32", VT::kFloat32, 0.5f);
  w.AddScalar<int64_t>("i64", VT::kInt64, -5);
  w.AddScalar<uint8_t>("bool", VT::kBool, 1);
  w.AddStringArray("tokenizer.ggml.tokens", {"<s>", "a", "bc"});
  w.AddArray<int32_t>("tokenizer.ggml.token_type", VT::kInt32, {3, 1, 1});
  w.AddTensorF32("norm", {4}, {1, 2, 3, 4});
  std::string q8(34, '\x01');
  w.AddTensor("q8_0", GgmlType::kQ8_0, {1, 32}, q8);
  std::string q4(20, '\x22');
  w.AddTensor("q4_1", GgmlType::kQ4_1, {1, 32}, q4);
  Seed("gguf", "small_v3.gguf", w.Build());
  w.set_version(2);
  Seed("gguf", "small_v2.gguf", w.Build());
  weights::testing::GgufWriter empty;
  Seed("gguf", "empty.gguf", empty.Build());
}

void SafetensorsSeeds(const std::string& data_dir) {
  weights::testing::SafetensorsWriter w;
  w.AddTensorF32("a", {2, 2}, {1, 2, 3, 4});
  w.AddTensor("b", "BF16", {3}, std::string(6, '\x3f'));
  w.AddTensor("c", "I64", {1}, std::string(8, '\0'));
  w.AddTensor("e", "F16", {0}, "");
  w.AddMetadata("format", "pt");
  Seed("safetensors", "small.safetensors", w.Build());
  Seed("safetensors", "reference.safetensors",
       ReadFile(data_dir + "/weights/reference.safetensors"));
}

void BlobSeeds() {
  // Byte 0 odd: the fuzzer fixes the checksums; even: verified as is.
  for (auto [name, dtype, layers, kept] : {std::tuple{"bf16", weights::StDtype::kBF16, 2, 3},
                                           std::tuple{"f32", weights::StDtype::kF32, 1, 2},
                                           std::tuple{"f16", weights::StDtype::kF16, 1, 1}}) {
    const std::string blob =
        blob::testing::SealTestBlob(dtype, layers, kept, 7, std::string(64, 'a'));
    Seed("memory_blob", std::string(name) + "_fixed.bin", "\x01" + blob);
    Seed("memory_blob", std::string(name) + "_asis.bin", std::string("\x00", 1) + blob);
  }
}

void BlobMetadataSeeds() {
  // FuzzedDataProvider reads its "consume" integers from the end: a seed is a plausible input,
  // the base entries switched on by the last byte.
  Seed("blob_metadata", "base_only", std::string("\x01", 1));
  Seed("blob_metadata", "with_extra", Lit("x.label\0hello\x00\x01"));
}

void TokenizerSeeds(const std::string& data_dir) {
  Seed("tokenizer_json", "tiny_llama3.json",
       ReadFile(data_dir + "/tokenizer/tiny_llama3/tokenizer.json"));
  Seed("tokenizer_json", "tiny_qwen2_with_config.json",
       ReadFile(data_dir + "/tokenizer/tokenizer_config.json") + std::string("\0", 1) +
           ReadFile(data_dir + "/tokenizer/tiny_qwen2/tokenizer.json"));
  Seed("bpe", "english", "\x01The quick brown fox jumps over the lazy dog. It's 2026!\n");
  Seed("bpe", "special", "\x03<|im_start|>user\nHi there<|im_end|>\n<|endoftext|>");
  Seed("bpe", "unicode", "\x01 caf\xc3\xa9 \xe6\xbc\xa2\xe5\xad\x97 \xf0\x9f\x99\x82  \t\r\n12345");
  Seed("bpe", "ids", std::string("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d", 14));
  Seed("chat_template", "own",
       Lit("\x03\x01user\x00Who are you?\x00"
           "assistant\x00I am."));
  Seed("chat_template", "jinja",
       "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
       "{{ '<|im_start|>system\\nYou are helpful.<|im_end|>\\n' }}{% endif %}"
       "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
       "{% endfor %}");
}

void RequestSeeds() {
  v1::CompressRequest start;
  v1::CompressionConfig* c = start.mutable_start()->mutable_config();
  c->set_pruner("tova");
  c->set_memory_type("FM");
  c->set_chunk_size(128);
  c->set_memory_size(64);
  start.mutable_start()->set_client_label("seed");
  Seed("compress_request", "start", start.SerializeAsString());
  v1::CompressRequest text;
  text.set_text("Some context to compress.");
  Seed("compress_request", "text", text.SerializeAsString());
  v1::CompressRequest tokens;
  for (int i : {1, 2, 3, 500}) tokens.mutable_tokens()->add_ids(i);
  Seed("compress_request", "tokens", tokens.SerializeAsString());
  Seed("compress_request", "text_then_start", text.SerializeAsString() + start.SerializeAsString());
  Seed("compression_config", "proto", c->SerializeAsString());
  Seed("compression_config", "json",
       R"({"pruner":"tova","memory_type":"FM","chunk_size":128,"memory_size":64,"n_sink_tokens":4,)"
       R"("kv_dtype":"bf16","position_mode":"slots","extra":[1,2.5e-3,null,true,{"a":[[]]}]})");
  Seed("compression_config", "nested", std::string(40, '[') + std::string(40, ']'));

  v1::GenerateRequest gen;
  gen.add_memory_ids(std::string(64, 'a'));
  gen.set_prompt("Who has taken Netherfield Park?");
  gen.set_max_tokens(16);
  gen.add_stop("\n\n");
  gen.mutable_sampling()->set_temperature(0.7f);
  gen.mutable_sampling()->set_top_p(0.9f);
  Seed("decoder_request", "generate_prompt", "\x01" + gen.SerializeAsString());
  v1::GenerateRequest chat;
  auto* m = chat.mutable_chat()->add_messages();
  m->set_role("user");
  m->set_content("Hello!");
  Seed("decoder_request", "generate_chat", "\x01" + chat.SerializeAsString());
  v1::ScoreRequest score;
  score.add_memory_ids(std::string(64, 'b'));
  score.set_prompt("Q: who?\nA:");
  score.set_text(" Mr. Bingley");
  Seed("decoder_request", "score", std::string("\x00", 1) + score.SerializeAsString());

  v1::ListMemoriesRequest list;
  list.set_page_size(2);
  Seed("page_token", "first_page", std::string("\x00", 1) + list.SerializeAsString());
  list.set_page_token(std::string(63, 'a') + "0");
  Seed("page_token", "second_page", "\x01" + list.SerializeAsString());
  list.set_page_token("not/an/id");
  Seed("page_token", "bad_token", std::string("\x00", 1) + list.SerializeAsString());
}

void TokensFileSeeds() {
  Seed("tokens_file", "two_tenants",
       Lit("# tokens\nabcdefghijklmnop0123 alice\n  ZYXWVUTSRQPONMLK-_.~ bob.team-1\n\0"
           "Bearer abcdefghijklmnop0123"));
  Seed("tokens_file", "bad_line", "short alice\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  const std::string data_dir = CTXMEM_TEST_DATA_DIR;
  GgufSeeds();
  SafetensorsSeeds(data_dir);
  BlobSeeds();
  BlobMetadataSeeds();
  TokenizerSeeds(data_dir);
  RequestSeeds();
  TokensFileSeeds();
  return 0;
}
