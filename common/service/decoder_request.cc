#include "common/service/decoder_request.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/blob/blob_id.h"
#include "common/status.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/utf8.h"

namespace ctxmem::service {
namespace {

absl::Status CheckUtf8(const std::string& text, absl::string_view field) {
  if (const int64_t at = tokenizer::FindInvalidUtf8(text); at >= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is not valid UTF-8 (first bad byte at offset ", at, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckMemoryIds(const google::protobuf::RepeatedPtrField<std::string>& ids,
                            const DecoderLimits& limits) {
  if (static_cast<int64_t>(ids.size()) > limits.max_memories) {
    return absl::ResourceExhaustedError(absl::StrCat(ids.size(), " memory_ids, the limit is ",
                                                     limits.max_memories, " per request"));
  }
  for (int i = 0; i < ids.size(); ++i) {
    if (!blob::IsMemoryId(ids[i])) {
      return absl::InvalidArgumentError(absl::StrCat("memory_ids[", i, "]='", ids[i].substr(0, 80),
                                                     "' is not 64 lowercase hex digits"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<model::SamplingOptions> ToSampling(const v1::SamplingParams& p) {
  model::SamplingOptions s;
  s.temperature = p.temperature();
  s.top_k = p.top_k();
  s.top_p = p.top_p() == 0.0f ? 1.0f : p.top_p();
  s.repetition_penalty = p.repetition_penalty() == 0.0f ? 1.0f : p.repetition_penalty();
  s.seed = p.seed();
  CTXMEM_RETURN_IF_ERROR(WithContext(s.Validate(), "sampling"));
  return s;
}

absl::Status CheckPromptLength(int64_t n_tokens, const DecoderLimits& limits,
                               absl::string_view what) {
  if (n_tokens > limits.max_prompt_tokens) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, " is ", n_tokens, " tokens, over this server's limit of ", limits.max_prompt_tokens));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status DecoderLimits::Validate() const {
  for (const auto& [name, value] :
       {std::pair<const char*, int64_t>{"max_new_tokens", max_new_tokens},
        {"max_prompt_tokens", max_prompt_tokens},
        {"max_memories", max_memories},
        {"max_stop_strings", max_stop_strings},
        {"max_stop_bytes", max_stop_bytes}}) {
    if (value < 1)
      return absl::InvalidArgumentError(absl::StrCat(name, "=", value, " must be >= 1"));
  }
  return absl::OkStatus();
}

absl::StatusOr<GenerateInputs> ParseGenerateRequest(const v1::GenerateRequest& request,
                                                    const tokenizer::Tokenizer& tokenizer,
                                                    const DecoderLimits& limits) {
  GenerateInputs in;
  CTXMEM_RETURN_IF_ERROR(CheckMemoryIds(request.memory_ids(), limits));
  in.memory_ids.assign(request.memory_ids().begin(), request.memory_ids().end());

  // Limits and options first: they are cheap and need no tokenization.
  if (request.max_tokens() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens=", request.max_tokens(), " must be >= 0 (0 = default)"));
  }
  if (request.max_tokens() > limits.max_new_tokens) {
    return absl::ResourceExhaustedError(absl::StrCat("max_tokens=", request.max_tokens(),
                                                     " is over this server's limit of ",
                                                     limits.max_new_tokens));
  }
  in.options.max_new_tokens = request.max_tokens() > 0
                                  ? request.max_tokens()
                                  : std::min<int64_t>(kDefaultMaxTokens, limits.max_new_tokens);
  CTXMEM_ASSIGN_OR_RETURN(in.options.sampling, ToSampling(request.sampling()));
  if (static_cast<int64_t>(request.stop_size()) > limits.max_stop_strings) {
    return absl::ResourceExhaustedError(
        absl::StrCat(request.stop_size(), " stop strings, the limit is ", limits.max_stop_strings));
  }
  for (int i = 0; i < request.stop_size(); ++i) {
    const std::string& stop = request.stop(i);
    if (stop.empty()) return absl::InvalidArgumentError(absl::StrCat("stop[", i, "] is empty"));
    if (static_cast<int64_t>(stop.size()) > limits.max_stop_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "stop[", i, "] is ", stop.size(), " bytes, the limit is ", limits.max_stop_bytes));
    }
    CTXMEM_RETURN_IF_ERROR(CheckUtf8(stop, absl::StrCat("stop[", i, "]")));
    in.options.stop_strings.push_back(stop);
  }

  std::string text;
  tokenizer::EncodeOptions encode;  // as is: no BOS (a memory may precede the prompt)
  switch (request.input_case()) {
    case v1::GenerateRequest::kPrompt: {
      if (request.prompt().empty()) {
        return absl::InvalidArgumentError("prompt is empty: give a question or instruction");
      }
      CTXMEM_RETURN_IF_ERROR(CheckUtf8(request.prompt(), "prompt"));
      text = request.prompt();
      break;
    }
    case v1::GenerateRequest::kChat: {
      const auto& messages = request.chat().messages();
      if (messages.empty()) return absl::InvalidArgumentError("chat has no messages");
      std::vector<tokenizer::ChatMessage> chat;
      for (int i = 0; i < messages.size(); ++i) {
        const v1::ChatMessage& m = messages[i];
        if (m.role() != "system" && m.role() != "user" && m.role() != "assistant") {
          return absl::InvalidArgumentError(
              absl::StrCat("chat.messages[", i, "].role='", m.role().substr(0, 40),
                           "' must be one of system, user, assistant"));
        }
        CTXMEM_RETURN_IF_ERROR(
            CheckUtf8(m.content(), absl::StrCat("chat.messages[", i, "].content")));
        chat.push_back({m.role(), m.content()});
      }
      bool any_content = false;
      for (const auto& m : chat) any_content |= !m.content.empty();
      if (!any_content) return absl::InvalidArgumentError("chat messages are all empty");
      const std::string& jinja = tokenizer.spec().chat_template;
      if (jinja.empty()) {
        return absl::FailedPreconditionError(
            "this server's model has no chat template; send a raw prompt instead");
      }
      CTXMEM_ASSIGN_OR_RETURN(tokenizer::ChatTemplateKind kind,
                              tokenizer::DetectChatTemplate(jinja));
      CTXMEM_ASSIGN_OR_RETURN(text, tokenizer::ApplyChatTemplate(kind, jinja, chat,
                                                                 /*add_generation_prompt=*/true));
      if (const int32_t im_end = tokenizer.TokenId("<|im_end|>"); im_end >= 0) {
        in.options.stop_ids.push_back(im_end);
      }
      break;
    }
    case v1::GenerateRequest::INPUT_NOT_SET:
      return absl::InvalidArgumentError("request has neither prompt nor chat");
  }
  CTXMEM_ASSIGN_OR_RETURN(in.prompt_ids, tokenizer.Encode(text, encode));
  if (in.prompt_ids.empty()) return absl::InvalidArgumentError("prompt has no tokens");
  CTXMEM_RETURN_IF_ERROR(
      CheckPromptLength(static_cast<int64_t>(in.prompt_ids.size()), limits, "prompt"));
  CTXMEM_RETURN_IF_ERROR(in.options.Validate());
  return in;
}

absl::StatusOr<ScoreInputs> ParseScoreRequest(const v1::ScoreRequest& request,
                                              const tokenizer::Tokenizer& tokenizer,
                                              const DecoderLimits& limits) {
  ScoreInputs in;
  CTXMEM_RETURN_IF_ERROR(CheckMemoryIds(request.memory_ids(), limits));
  in.memory_ids.assign(request.memory_ids().begin(), request.memory_ids().end());
  CTXMEM_RETURN_IF_ERROR(CheckUtf8(request.prompt(), "prompt"));
  if (!request.prompt().empty()) {
    CTXMEM_ASSIGN_OR_RETURN(in.prompt_ids, tokenizer.Encode(request.prompt()));
  }
  switch (request.continuation_case()) {
    case v1::ScoreRequest::kText: {
      CTXMEM_RETURN_IF_ERROR(CheckUtf8(request.text(), "text"));
      CTXMEM_ASSIGN_OR_RETURN(in.continuation_ids, tokenizer.Encode(request.text()));
      break;
    }
    case v1::ScoreRequest::kTokens:
      for (int i = 0; i < request.tokens().ids_size(); ++i) {
        const int32_t id = request.tokens().ids(i);
        if (id < 0 || id >= tokenizer.n_vocab()) {
          return absl::InvalidArgumentError(absl::StrCat("tokens.ids[", i, "]=", id,
                                                         " is outside the vocabulary [0, ",
                                                         tokenizer.n_vocab(), ")"));
        }
        in.continuation_ids.push_back(id);
      }
      break;
    case v1::ScoreRequest::CONTINUATION_NOT_SET:
      return absl::InvalidArgumentError("request has neither text nor tokens to score");
  }
  if (in.continuation_ids.empty()) {
    return absl::InvalidArgumentError("the continuation to score is empty");
  }
  if (in.prompt_ids.empty() && in.continuation_ids.size() < 2) {
    return absl::InvalidArgumentError(
        "without a prompt the first continuation token only conditions the rest: send at least "
        "2 tokens, or a prompt");
  }
  CTXMEM_RETURN_IF_ERROR(
      CheckPromptLength(static_cast<int64_t>(in.prompt_ids.size() + in.continuation_ids.size()),
                        limits, "prompt + continuation"));
  return in;
}

}  // namespace ctxmem::service
