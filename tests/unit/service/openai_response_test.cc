#include "common/service/openai_response.h"

#include <string>

#include "absl/strings/cord.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ctxmem::service {
namespace {

using nlohmann::json;

v1::GenerateDone Done(const std::string& text, const std::string& stop_reason) {
  v1::GenerateDone done;
  done.set_text(text);
  done.set_stop_reason(stop_reason);
  done.mutable_usage()->set_prompt_tokens(11);
  done.mutable_usage()->set_generated_tokens(4);
  done.mutable_usage()->set_memory_entries(64);
  done.mutable_timings()->set_ttft_seconds(0.25);
  done.mutable_timings()->set_cache_hit(true);
  done.set_request_id("0123456789abcdef");
  return done;
}

OpenAiResponseHeader Header(OpenAiEndpoint endpoint) {
  return {endpoint, OpenAiResponseId(endpoint, "0123456789abcdef"), 1700000000, "m"};
}

// "data: {...}\n\n" -> the JSON.
json EventJson(const std::string& event) {
  EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
  EXPECT_EQ(event.substr(event.size() - 2), "\n\n");
  return json::parse(event.substr(6, event.size() - 8));
}

TEST(OpenAiResponseTest, ChatCompletionBody) {
  const json body =
      json::parse(CompletionBody(Header(OpenAiEndpoint::kChatCompletions), Done("Paris.", "eos")));
  EXPECT_EQ(body["id"], "chatcmpl-0123456789abcdef");
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["created"], 1700000000);
  EXPECT_EQ(body["model"], "m");
  ASSERT_EQ(body["choices"].size(), 1u);
  EXPECT_EQ(body["choices"][0]["message"], (json{{"role", "assistant"}, {"content", "Paris."}}));
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(body["usage"]["prompt_tokens"], 11);
  EXPECT_EQ(body["usage"]["completion_tokens"], 4);
  EXPECT_EQ(body["usage"]["total_tokens"], 15);
  EXPECT_EQ(body["usage"]["memory_entries"], 64);
  EXPECT_EQ(body["usage"]["ttft_seconds"], 0.25);
  EXPECT_EQ(body["ctxmem"]["request_id"], "0123456789abcdef");
  EXPECT_EQ(body["ctxmem"]["cache_hit"], true);
}

TEST(OpenAiResponseTest, TextCompletionBodyAndFinishReasons) {
  const json body = json::parse(
      CompletionBody(Header(OpenAiEndpoint::kCompletions), Done(" Paris", "max_tokens")));
  EXPECT_EQ(body["id"], "cmpl-0123456789abcdef");
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["choices"][0]["text"], " Paris");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(FinishReason("stop_string"), "stop");
  EXPECT_EQ(FinishReason("context_limit"), "length");
}

TEST(OpenAiResponseTest, StreamEvents) {
  const OpenAiResponseHeader chat = Header(OpenAiEndpoint::kChatCompletions);
  json role = EventJson(RoleChunkEvent(chat));
  EXPECT_EQ(role["object"], "chat.completion.chunk");
  EXPECT_EQ(role["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(role["choices"][0]["finish_reason"].is_null());
  json text = EventJson(TextChunkEvent(chat, "Par"));
  EXPECT_EQ(text["choices"][0]["delta"], (json{{"content", "Par"}}));
  json finish = EventJson(FinishChunkEvent(chat, Done("Paris", "eos")));
  EXPECT_EQ(finish["choices"][0]["delta"], json::object());
  EXPECT_EQ(finish["choices"][0]["finish_reason"], "stop");
  json usage = EventJson(UsageChunkEvent(chat, Done("Paris", "eos")));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["memory_entries"], 64);
  json completion = EventJson(TextChunkEvent(Header(OpenAiEndpoint::kCompletions), "is"));
  EXPECT_EQ(completion["object"], "text_completion");
  EXPECT_EQ(completion["choices"][0]["text"], "is");
  EXPECT_EQ(DoneEvent(), "data: [DONE]\n\n");
  json error = EventJson(ErrorEvent(absl::UnavailableError("no compressor")));
  EXPECT_EQ(error["error"]["code"], "UNAVAILABLE");
}

TEST(OpenAiResponseTest, HttpStatusOfEachCode) {
  EXPECT_EQ(HttpStatusOf(absl::InvalidArgumentError("x")), 400);
  EXPECT_EQ(HttpStatusOf(absl::FailedPreconditionError("x")), 400);
  EXPECT_EQ(HttpStatusOf(absl::ResourceExhaustedError("max_tokens over the limit")), 400);
  absl::Status overloaded = absl::ResourceExhaustedError("queue full");
  overloaded.SetPayload("type.ctxmem.dev/overloaded", absl::Cord("1"));
  EXPECT_EQ(HttpStatusOf(overloaded), 429);
  EXPECT_EQ(HttpStatusOf(absl::UnauthenticatedError("x")), 401);
  EXPECT_EQ(HttpStatusOf(absl::PermissionDeniedError("x")), 403);
  EXPECT_EQ(HttpStatusOf(absl::NotFoundError("x")), 404);
  EXPECT_EQ(HttpStatusOf(absl::UnavailableError("x")), 503);
  EXPECT_EQ(HttpStatusOf(absl::DeadlineExceededError("x")), 504);
  EXPECT_EQ(HttpStatusOf(absl::DataLossError("x")), 500);
  EXPECT_EQ(HttpStatusOf(absl::InternalError("x")), 500);
}

TEST(OpenAiResponseTest, ErrorBodyIsOpenAiShaped) {
  const json body = json::parse(ErrorBody(absl::NotFoundError("memory abc not found")));
  EXPECT_EQ(body, (json{{"error",
                         {{"message", "memory abc not found"},
                          {"type", "invalid_request_error"},
                          {"param", nullptr},
                          {"code", "NOT_FOUND"}}}}));
  EXPECT_EQ(json::parse(ErrorBody(absl::UnauthenticatedError("x")))["error"]["type"],
            "authentication_error");
  const json long_body = json::parse(ErrorBody(absl::InternalError(std::string(10000, 'e'))));
  EXPECT_EQ(long_body["error"]["message"].get<std::string>().size(), 4096u);
  EXPECT_EQ(long_body["error"]["type"], "server_error");
}

TEST(OpenAiResponseTest, ModelsBody) {
  const json body = json::parse(ModelsBody("m", 5));
  EXPECT_EQ(body["object"], "list");
  EXPECT_EQ(body["data"],
            json::array(
                {json{{"id", "m"}, {"object", "model"}, {"created", 5}, {"owned_by", "ctxmem"}}}));
}

}  // namespace
}  // namespace ctxmem::service
