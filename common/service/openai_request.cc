#include "common/service/openai_request.h"

#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace ctxmem::service {
namespace {

using nlohmann::json;

absl::Status FieldError(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("'", field, "' ", what));
}

// The member `name` of `body`, or nullptr when absent or null (OpenAI treats null as absent).
const json* Member(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

// The string member `name` of `object`, or "" when absent or not a string (never throws).
std::string StringOr(const json& object, const char* name) {
  const json* v = object.is_object() ? Member(object, name) : nullptr;
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

absl::StatusOr<bool> OptionalBool(const json& body, const char* name, bool fallback) {
  const json* v = Member(body, name);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) return FieldError(name, "must be a boolean");
  return v->get<bool>();
}

// A float field within [lo, hi] (the values ParseGenerateRequest accepts are narrower; this only
// keeps the conversion to float meaningful).
absl::StatusOr<float> OptionalNumber(const json& body, const char* name, float fallback) {
  const json* v = Member(body, name);
  if (v == nullptr) return fallback;
  if (!v->is_number()) return FieldError(name, "must be a number");
  const double d = v->get<double>();
  if (!(d >= -1e6 && d <= 1e6)) return FieldError(name, absl::StrCat("=", d, " is out of range"));
  return static_cast<float>(d);
}

// An integer field in [lo, hi].
absl::StatusOr<int64_t> OptionalInt(const json& body, const char* name, int64_t fallback,
                                    int64_t lo, int64_t hi) {
  const json* v = Member(body, name);
  if (v == nullptr) return fallback;
  if (!v->is_number_integer()) return FieldError(name, "must be an integer");
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi)) {
    return FieldError(name, absl::StrCat("=", v->get<uint64_t>(), " is over ", hi));
  }
  const int64_t i = v->get<int64_t>();
  if (i < lo || i > hi) {
    return FieldError(name, absl::StrCat("=", i, " is outside [", lo, ", ", hi, "]"));
  }
  return i;
}

// Fields ctxmem does not implement: refused unless absent, null or the neutral value.
absl::Status RefuseUnsupported(const json& body, OpenAiEndpoint endpoint) {
  for (const char* name : {"tools", "functions", "tool_choice", "function_call", "logit_bias"}) {
    const json* v = Member(body, name);
    if (v != nullptr && !(v->is_array() && v->empty()) && !(v->is_object() && v->empty()) &&
        !(v->is_string() && v->get<std::string>() == "none")) {
      return FieldError(name, "is not supported by ctxmem");
    }
  }
  for (const char* name : {"presence_penalty", "frequency_penalty"}) {
    CTXMEM_ASSIGN_OR_RETURN(float p, OptionalNumber(body, name, 0.0f));
    if (p != 0.0f) {
      return FieldError(name, "is not supported by ctxmem (use repetition_penalty)");
    }
  }
  CTXMEM_ASSIGN_OR_RETURN(int64_t n, OptionalInt(body, "n", 1, 0, 1 << 20));
  if (n != 1) return FieldError("n", absl::StrCat("=", n, ": ctxmem makes one choice (n=1)"));
  if (endpoint == OpenAiEndpoint::kChatCompletions) {
    CTXMEM_ASSIGN_OR_RETURN(bool logprobs, OptionalBool(body, "logprobs", false));
    if (logprobs) return FieldError("logprobs", "is not supported by ctxmem");
    if (Member(body, "top_logprobs") != nullptr) {
      return FieldError("top_logprobs", "is not supported by ctxmem");
    }
    if (const json* rf = Member(body, "response_format"); rf != nullptr) {
      if (StringOr(*rf, "type") != "text") {
        return FieldError("response_format", "other than {\"type\": \"text\"} is not supported");
      }
    }
  } else {
    if (Member(body, "logprobs") != nullptr) {
      return FieldError("logprobs", "is not supported by ctxmem");
    }
    CTXMEM_ASSIGN_OR_RETURN(bool echo, OptionalBool(body, "echo", false));
    if (echo) return FieldError("echo", "is not supported by ctxmem");
    if (const json* s = Member(body, "suffix"); s != nullptr && !(s->is_string() && s->empty())) {
      return FieldError("suffix", "is not supported by ctxmem");
    }
    CTXMEM_ASSIGN_OR_RETURN(int64_t best_of, OptionalInt(body, "best_of", 1, 0, 1 << 20));
    if (best_of != 1) return FieldError("best_of", "other than 1 is not supported by ctxmem");
  }
  return absl::OkStatus();
}

// "content": a string, or an array of {"type": "text", "text": "..."} parts (concatenated).
absl::StatusOr<std::string> MessageContent(const json& message, int index) {
  const std::string field = absl::StrCat("messages[", index, "].content");
  const json* content = Member(message, "content");
  if (content == nullptr) return std::string();
  if (content->is_string()) return content->get<std::string>();
  if (!content->is_array()) return FieldError(field, "must be a string or an array of parts");
  std::string text;
  for (size_t i = 0; i < content->size(); ++i) {
    const json& part = (*content)[i];
    const std::string part_field = absl::StrCat(field, "[", i, "]");
    if (StringOr(part, "type") != "text") {
      return FieldError(part_field, "must be {\"type\": \"text\", ...}: ctxmem reads text only");
    }
    const json* t = Member(part, "text");
    if (t == nullptr || !t->is_string())
      return FieldError(part_field + ".text", "must be a string");
    text += t->get<std::string>();
  }
  return text;
}

absl::Status ParseMessages(const json& body, v1::GenerateRequest* out) {
  const json* messages = Member(body, "messages");
  if (messages == nullptr) return FieldError("messages", "is required");
  if (!messages->is_array()) return FieldError("messages", "must be an array");
  v1::ChatMessages* chat = out->mutable_chat();
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string field = absl::StrCat("messages[", i, "]");
    if (!m.is_object()) return FieldError(field, "must be an object");
    const json* role = Member(m, "role");
    if (role == nullptr || !role->is_string()) return FieldError(field + ".role", "is required");
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";  // OpenAI's newer name for the system role
    CTXMEM_ASSIGN_OR_RETURN(std::string content, MessageContent(m, static_cast<int>(i)));
    v1::ChatMessage* message = chat->add_messages();
    message->set_role(std::move(r));
    message->set_content(std::move(content));
  }
  return absl::OkStatus();
}

absl::Status ParsePrompt(const json& body, v1::GenerateRequest* out) {
  const json* prompt = Member(body, "prompt");
  if (prompt == nullptr) return FieldError("prompt", "is required");
  if (prompt->is_string()) {
    out->set_prompt(prompt->get<std::string>());
    return absl::OkStatus();
  }
  if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    out->set_prompt((*prompt)[0].get<std::string>());
    return absl::OkStatus();
  }
  return FieldError("prompt", "must be a string (or an array of one string)");
}

absl::Status ParseStop(const json& body, v1::GenerateRequest* out) {
  const json* stop = Member(body, "stop");
  if (stop == nullptr) return absl::OkStatus();
  if (stop->is_string()) {
    out->add_stop(stop->get<std::string>());
    return absl::OkStatus();
  }
  if (!stop->is_array()) return FieldError("stop", "must be a string or an array of strings");
  for (size_t i = 0; i < stop->size(); ++i) {
    if (!(*stop)[i].is_string()) return FieldError(absl::StrCat("stop[", i, "]"), "not a string");
    out->add_stop((*stop)[i].get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status ParseMemoryIds(const json& body, v1::GenerateRequest* out) {
  const json* ids = Member(body, "memory_ids");
  if (ids == nullptr) return absl::OkStatus();
  if (!ids->is_array()) return FieldError("memory_ids", "must be an array of memory ids");
  for (size_t i = 0; i < ids->size(); ++i) {
    if (!(*ids)[i].is_string()) {
      return FieldError(absl::StrCat("memory_ids[", i, "]"), "must be a string");
    }
    out->add_memory_ids((*ids)[i].get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status ParseSampling(const json& body, OpenAiEndpoint endpoint, v1::GenerateRequest* out) {
  v1::SamplingParams* s = out->mutable_sampling();
  CTXMEM_ASSIGN_OR_RETURN(float temperature,
                          OptionalNumber(body, "temperature", kOpenAiDefaultTemperature));
  s->set_temperature(temperature);
  CTXMEM_ASSIGN_OR_RETURN(float top_p, OptionalNumber(body, "top_p", 1.0f));
  s->set_top_p(top_p);
  // vLLM's extra sampling parameters: top_k (-1 = off) and repetition_penalty.
  CTXMEM_ASSIGN_OR_RETURN(int64_t top_k,
                          OptionalInt(body, "top_k", 0, -1, std::numeric_limits<int32_t>::max()));
  s->set_top_k(top_k < 0 ? 0 : static_cast<int32_t>(top_k));
  CTXMEM_ASSIGN_OR_RETURN(float repetition_penalty,
                          OptionalNumber(body, "repetition_penalty", 1.0f));
  s->set_repetition_penalty(repetition_penalty);
  CTXMEM_ASSIGN_OR_RETURN(int64_t seed,
                          OptionalInt(body, "seed", 0, 0, std::numeric_limits<int64_t>::max()));
  s->set_seed(static_cast<uint64_t>(seed));

  // max_tokens: chat also takes max_completion_tokens (the newer name). 0 keeps the server's
  // default; values over the server's limit are refused by ParseGenerateRequest.
  const int64_t fallback =
      endpoint == OpenAiEndpoint::kCompletions ? kOpenAiCompletionsDefaultMaxTokens : 0;
  CTXMEM_ASSIGN_OR_RETURN(int64_t max_tokens, OptionalInt(body, "max_tokens", fallback, 1,
                                                          std::numeric_limits<int32_t>::max()));
  if (endpoint == OpenAiEndpoint::kChatCompletions) {
    CTXMEM_ASSIGN_OR_RETURN(max_tokens, OptionalInt(body, "max_completion_tokens", max_tokens, 1,
                                                    std::numeric_limits<int32_t>::max()));
  }
  out->set_max_tokens(static_cast<int32_t>(max_tokens));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(OpenAiEndpoint endpoint, absl::string_view body,
                                                 absl::string_view served_model) {
  const json doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError("the body is not valid JSON");
  if (!doc.is_object()) return absl::InvalidArgumentError("the body must be a JSON object");
  OpenAiRequest req;
  req.endpoint = endpoint;
  const json* model = Member(doc, "model");
  if (model == nullptr || !model->is_string()) return FieldError("model", "is required");
  req.model = model->get<std::string>();
  if (req.model != served_model) {
    return absl::NotFoundError(absl::StrCat("the model '", req.model.substr(0, 100),
                                            "' does not exist; this server serves '", served_model,
                                            "' (GET /v1/models)"));
  }
  CTXMEM_RETURN_IF_ERROR(RefuseUnsupported(doc, endpoint));
  CTXMEM_ASSIGN_OR_RETURN(req.stream, OptionalBool(doc, "stream", false));
  if (const json* options = Member(doc, "stream_options"); options != nullptr) {
    if (!options->is_object()) return FieldError("stream_options", "must be an object");
    if (!req.stream) return FieldError("stream_options", "is only allowed with \"stream\": true");
    CTXMEM_ASSIGN_OR_RETURN(req.include_usage, OptionalBool(*options, "include_usage", false));
  }
  CTXMEM_RETURN_IF_ERROR(ParseMemoryIds(doc, &req.generate));
  if (endpoint == OpenAiEndpoint::kChatCompletions) {
    CTXMEM_RETURN_IF_ERROR(ParseMessages(doc, &req.generate));
  } else {
    CTXMEM_RETURN_IF_ERROR(ParsePrompt(doc, &req.generate));
  }
  CTXMEM_RETURN_IF_ERROR(ParseSampling(doc, endpoint, &req.generate));
  CTXMEM_RETURN_IF_ERROR(ParseStop(doc, &req.generate));
  return req;
}

}  // namespace ctxmem::service
