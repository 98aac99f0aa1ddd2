#include "common/service/openai_request.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ctxmem::service {
namespace {

using ::testing::HasSubstr;

constexpr char kModel[] = "SmolLM2-135M-Instruct";

absl::StatusOr<OpenAiRequest> Chat(const std::string& body) {
  return ParseOpenAiRequest(OpenAiEndpoint::kChatCompletions, body, kModel);
}
absl::StatusOr<OpenAiRequest> Completion(const std::string& body) {
  return ParseOpenAiRequest(OpenAiEndpoint::kCompletions, body, kModel);
}

TEST(OpenAiRequestTest, ChatBecomesAGenerateRequest) {
  auto r = Chat(R"({"model": "SmolLM2-135M-Instruct", "messages": [
      {"role": "developer", "content": "Be brief."},
      {"role": "user", "content": [{"type": "text", "text": "Who is "}, {"type": "text", "text": "Darcy?"}]}],
      "max_tokens": 20, "temperature": 0, "top_p": 0.9, "top_k": -1, "seed": 7,
      "repetition_penalty": 1.1, "stop": "\n\n", "stream": true,
      "stream_options": {"include_usage": true}, "user": "ignored",
      "memory_ids": ["aa", "bb"]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model, kModel);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  const v1::GenerateRequest& g = r->generate;
  ASSERT_TRUE(g.has_chat());
  ASSERT_EQ(g.chat().messages_size(), 2);
  EXPECT_EQ(g.chat().messages(0).role(), "system");  // developer is OpenAI's newer name
  EXPECT_EQ(g.chat().messages(1).content(), "Who is Darcy?");
  EXPECT_EQ(g.max_tokens(), 20);
  EXPECT_EQ(g.sampling().temperature(), 0.0f);
  EXPECT_FLOAT_EQ(g.sampling().top_p(), 0.9f);
  EXPECT_EQ(g.sampling().top_k(), 0);
  EXPECT_EQ(g.sampling().seed(), 7u);
  EXPECT_FLOAT_EQ(g.sampling().repetition_penalty(), 1.1f);
  ASSERT_EQ(g.stop_size(), 1);
  EXPECT_EQ(g.stop(0), "\n\n");
  ASSERT_EQ(g.memory_ids_size(), 2);  // their format is ParseGenerateRequest's to check
  EXPECT_EQ(g.memory_ids(1), "bb");
}

TEST(OpenAiRequestTest, OpenAiDefaults) {
  auto chat = Chat(R"({"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user",
      "content": "hi"}], "max_tokens": null, "stop": null})");
  ASSERT_TRUE(chat.ok()) << chat.status();
  EXPECT_FALSE(chat->stream);
  EXPECT_EQ(chat->generate.sampling().temperature(), kOpenAiDefaultTemperature);
  EXPECT_EQ(chat->generate.max_tokens(), 0);  // the server's default
  EXPECT_EQ(chat->generate.memory_ids_size(), 0);
  auto completion = Completion(R"({"model": "SmolLM2-135M-Instruct", "prompt": ["Once"]})");
  ASSERT_TRUE(completion.ok()) << completion.status();
  EXPECT_EQ(completion->generate.prompt(), "Once");
  EXPECT_EQ(completion->generate.max_tokens(), kOpenAiCompletionsDefaultMaxTokens);
  auto newer = Chat(R"({"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user",
      "content": "hi"}], "max_completion_tokens": 5})");
  ASSERT_TRUE(newer.ok()) << newer.status();
  EXPECT_EQ(newer->generate.max_tokens(), 5);
}

TEST(OpenAiRequestTest, AnotherModelIsNotFound) {
  auto r = Chat(R"({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})");
  ASSERT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(kModel));
}

TEST(OpenAiRequestTest, MalformedBodiesNameTheField) {
  const std::string ok_messages = R"("messages": [{"role": "user", "content": "hi"}])";
  const auto chat = [&](const std::string& extra) {
    return Chat(R"({"model": "SmolLM2-135M-Instruct", )" + ok_messages + extra + "}");
  };
  for (const auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {"not json", "not valid JSON"},
           {"[1, 2]", "JSON object"},
           {R"({"messages": []})", "'model'"},
           {R"({"model": "SmolLM2-135M-Instruct"})", "'messages'"},
           {R"({"model": "SmolLM2-135M-Instruct", "messages": {}})", "'messages'"},
           {R"({"model": "SmolLM2-135M-Instruct", "messages": [{"content": "x"}]})",
            "messages[0].role"},
           {R"({"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user",
               "content": [{"type": "image_url"}]}]})",
            "messages[0].content[0]"},
       }) {
    auto r = Chat(body);
    ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << body;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(field)) << body;
  }
  for (const auto& [extra, field] : std::vector<std::pair<std::string, std::string>>{
           {R"(, "max_tokens": "ten")", "'max_tokens'"},
           {R"(, "max_tokens": 0)", "'max_tokens'"},
           {R"(, "max_tokens": 1e3)", "'max_tokens'"},
           {R"(, "max_tokens": 99999999999)", "'max_tokens'"},
           {R"(, "temperature": "hot")", "'temperature'"},
           {R"(, "seed": -1)", "'seed'"},
           {R"(, "stream": "yes")", "'stream'"},
           {R"(, "stream_options": {"include_usage": true})", "'stream_options'"},
           {R"(, "stop": 3)", "'stop'"},
           {R"(, "stop": ["a", 1])", "stop[1]"},
           {R"(, "memory_ids": "abc")", "'memory_ids'"},
           {R"(, "memory_ids": [1])", "memory_ids[0]"},
           {R"(, "n": 2)", "'n'"},
           {R"(, "logprobs": true)", "'logprobs'"},
           {R"(, "tools": [{"type": "function"}])", "'tools'"},
           {R"(, "presence_penalty": 0.5)", "'presence_penalty'"},
           {R"(, "response_format": {"type": "json_object"})", "'response_format'"},
       }) {
    auto r = chat(extra);
    ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << extra;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(field)) << extra;
  }
  // Neutral values of unsupported features are accepted.
  EXPECT_TRUE(chat(R"(, "n": 1, "logprobs": false, "tools": [], "presence_penalty": 0,
      "response_format": {"type": "text"})")
                  .ok());
}

TEST(OpenAiRequestTest, CompletionsRefuseWhatCtxmemDoesNotDo) {
  for (const char* extra :
       {R"(, "echo": true)", R"(, "suffix": "end")", R"(, "best_of": 3)", R"(, "logprobs": 2)"}) {
    auto r = Completion(std::string(R"({"model": "SmolLM2-135M-Instruct", "prompt": "x")") + extra +
                        "}");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << extra;
  }
  for (const char* prompt : {"[1, 2, 3]", R"(["a", "b"])", "{}"}) {
    auto r =
        Completion(std::string(R"({"model": "SmolLM2-135M-Instruct", "prompt": )") + prompt + "}");
    ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << prompt;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("'prompt'"));
  }
}

}  // namespace
}  // namespace ctxmem::service
