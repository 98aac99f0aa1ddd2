#include "common/tokenizer/tokenizer.h"

#include <limits>
#include <utility>

#include "absl/strings/str_format.h"
#include "common/status.h"
#include "common/tokenizer/bpe_model.h"
#include "common/tokenizer/byte_unicode.h"
#include "common/tokenizer/pre_tokenizer.h"
#include "common/tokenizer/special_token_matcher.h"
#include "common/tokenizer/utf8.h"

// Encoding runs in three stages, each matching its HF `tokenizers` counterpart:
//   1. added tokens are cut out of the text verbatim (SpecialTokenMatcher ~ AddedVocabulary);
//   2. the plain text between them is split by the pre-tokenizer's regexes (PreTokenizer);
//   3. every piece is merged by BPE from single bytes (BpeModel ~ BPE::merge_word).
// Decoding concatenates each token's bytes, computed once at creation: control and
// user-defined tokens give their text, other tokens are decoded from the byte-level alphabet
// (a token with a character outside it keeps its text, as HF's ByteLevel decoder does).

namespace ctxmem::tokenizer {
namespace {

bool IsAddedTokenType(TokenType type) {
  return type == TokenType::kControl || type == TokenType::kUserDefined;
}

absl::Status CheckSpecialId(const char* what, int32_t id, size_t n_vocab) {
  if (id < -1 || (id >= 0 && static_cast<size_t>(id) >= n_vocab)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s=%d is out of range [-1, %d)", what, id, n_vocab));
  }
  return absl::OkStatus();
}

}  // namespace

struct Tokenizer::Impl {
  // Constant after construction.
  TokenizerSpec spec;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  BpeModel bpe;
  SpecialTokenMatcher added_tokens;
  std::vector<std::string> token_bytes;  // id -> raw bytes it decodes to

  Impl(TokenizerSpec s, std::unique_ptr<PreTokenizer> p, BpeModel b)
      : spec(std::move(s)), pre_tokenizer(std::move(p)), bpe(std::move(b)) {}

  absl::Status CheckId(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= token_bytes.size()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("token id %d is out of range [0, %d)", id, token_bytes.size()));
    }
    return absl::OkStatus();
  }
};

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Create(TokenizerSpec spec) {
  const size_t n_vocab = spec.tokens.size();
  if (n_vocab == 0) return absl::InvalidArgumentError("tokenizer has an empty vocabulary");
  if (n_vocab > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(absl::StrFormat("n_vocab=%d exceeds int32", n_vocab));
  }
  if (spec.token_types.empty()) spec.token_types.assign(n_vocab, TokenType::kNormal);
  if (spec.token_types.size() != n_vocab) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "token_types has %d entries but the vocabulary has %d", spec.token_types.size(), n_vocab));
  }
  for (size_t id = 0; id < n_vocab; ++id) {
    const auto type = static_cast<int32_t>(spec.token_types[id]);
    if (type < 0 || type > static_cast<int32_t>(TokenType::kByte)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("token %d has unknown token type %d (known 0..6)", id, type));
    }
  }
  CTXMEM_RETURN_IF_ERROR(CheckSpecialId("bos_id", spec.bos_id, n_vocab));
  CTXMEM_RETURN_IF_ERROR(CheckSpecialId("eos_id", spec.eos_id, n_vocab));
  CTXMEM_RETURN_IF_ERROR(CheckSpecialId("unk_id", spec.unk_id, n_vocab));
  CTXMEM_RETURN_IF_ERROR(CheckSpecialId("pad_id", spec.pad_id, n_vocab));
  CTXMEM_RETURN_IF_ERROR(CheckSpecialId("bpe_unk_id", spec.bpe_unk_id, n_vocab));
  CTXMEM_ASSIGN_OR_RETURN(std::unique_ptr<PreTokenizer> pre_tokenizer,
                          PreTokenizer::Create(spec.pre_tokenizer));
  BpeModel::Options bpe_options;
  bpe_options.unk_id = spec.bpe_unk_id;
  bpe_options.ignore_merges = spec.ignore_merges;
  CTXMEM_ASSIGN_OR_RETURN(BpeModel bpe, BpeModel::Create(spec.tokens, spec.merges, bpe_options));

  auto impl = std::make_unique<Impl>(std::move(spec), std::move(pre_tokenizer), std::move(bpe));
  const TokenizerSpec& s = impl->spec;
  impl->token_bytes.resize(n_vocab);
  for (size_t id = 0; id < n_vocab; ++id) {
    const std::string& text = s.tokens[id];
    std::string& bytes = impl->token_bytes[id];
    if (IsAddedTokenType(s.token_types[id])) {
      impl->added_tokens.Add(text, static_cast<int32_t>(id),
                             s.token_types[id] == TokenType::kControl);
      bytes = text;
    } else if (!DecodeByteLevel(text, &bytes)) {
      bytes = text;
    }
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text,
                                                       const EncodeOptions& options) const {
  if (const int64_t bad = FindInvalidUtf8(text); bad >= 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("text is not valid UTF-8 at byte offset %d (byte 0x%02x)", bad,
                        static_cast<uint8_t>(text[bad])));
  }
  const TokenizerSpec& spec = impl_->spec;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  if (options.add_special && spec.add_bos && spec.bos_id >= 0) ids.push_back(spec.bos_id);
  std::vector<SpecialTokenMatcher::Segment> segments;
  impl_->added_tokens.Split(text, options.parse_special, &segments);
  std::vector<TextRange> pieces;
  for (const SpecialTokenMatcher::Segment& segment : segments) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
      continue;
    }
    const std::string_view plain = text.substr(segment.begin, segment.end - segment.begin);
    CTXMEM_RETURN_IF_ERROR(impl_->pre_tokenizer->Split(plain, &pieces));
    for (const TextRange& piece : pieces) {
      impl_->bpe.EncodePiece(plain.substr(piece.begin, piece.end - piece.begin), &ids);
    }
  }
  if (options.add_special && spec.add_eos && spec.eos_id >= 0) ids.push_back(spec.eos_id);
  return ids;
}

absl::StatusOr<std::string> Tokenizer::Decode(absl::Span<const int32_t> ids,
                                              bool skip_special) const {
  std::string out;
  for (const int32_t id : ids) {
    CTXMEM_RETURN_IF_ERROR(impl_->CheckId(id));
    if (skip_special && IsControl(id)) continue;
    out.append(impl_->token_bytes[id]);
  }
  return out;
}

absl::StatusOr<std::string> Tokenizer::TokenBytes(int32_t id) const {
  CTXMEM_RETURN_IF_ERROR(impl_->CheckId(id));
  return impl_->token_bytes[id];
}

int32_t Tokenizer::TokenId(std::string_view token_text) const {
  return impl_->bpe.TokenId(token_text);
}

int32_t Tokenizer::n_vocab() const { return static_cast<int32_t>(impl_->token_bytes.size()); }
int32_t Tokenizer::bos_id() const { return impl_->spec.bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->spec.eos_id; }

bool Tokenizer::IsControl(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->spec.token_types.size() &&
         impl_->spec.token_types[id] == TokenType::kControl;
}

const TokenizerSpec& Tokenizer::spec() const { return impl_->spec; }

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

absl::StatusOr<std::string> StreamingDecoder::Push(int32_t id) {
  CTXMEM_ASSIGN_OR_RETURN(std::string bytes, tokenizer_.TokenBytes(id));
  if (skip_special_ && tokenizer_.IsControl(id)) return std::string();
  pending_.append(bytes);
  const size_t ready = pending_.size() - IncompleteUtf8TailLength(pending_);
  std::string out = Utf8Lossy(std::string_view(pending_).substr(0, ready));
  pending_.erase(0, ready);
  return out;
}

std::string StreamingDecoder::Flush() {
  std::string out = Utf8Lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace ctxmem::tokenizer
