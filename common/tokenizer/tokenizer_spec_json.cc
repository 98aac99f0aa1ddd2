// TokenizerSpecFromJson (declared in tokenizer_spec.h): reads a HF tokenizer.json and, beside
// it, tokenizer_config.json. nlohmann::json is used without exceptions: the parser runs with
// allow_exceptions=false and every value's type is checked before it is read.

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "common/tokenizer/pre_tokenizer.h"
#include "common/tokenizer/tokenizer_spec.h"
#include "nlohmann/json.hpp"

namespace ctxmem::tokenizer {
namespace {

using Json = nlohmann::json;

constexpr uint64_t kMaxFileBytes = 1ull << 30;  // 1 GiB; real tokenizer.json files are < 50 MB
constexpr int64_t kMaxTokenId = (1 << 24) - 1;  // bounds the vocabulary we allocate

absl::StatusOr<Json> ReadJsonFile(const std::string& path) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return absl::NotFoundError(absl::StrFormat("%s: %s", path, ec.message()));
  if (size > kMaxFileBytes) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("%s: %d bytes exceeds the limit of %d", path, size, kMaxFileBytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrFormat("%s: cannot open", path));
  std::string text(size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in.gcount()) != size) {
    return absl::DataLossError(absl::StrFormat("%s: short read", path));
  }
  Json json = Json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: not valid JSON", path));
  }
  return json;
}

// The member `key` of `object`, or nullptr when `object` is not an object or lacks it.
const Json* Member(const Json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

// Null when absent or JSON null; the string otherwise; InvalidArgument for another type.
absl::StatusOr<std::optional<std::string>> OptionalString(const Json& object, const char* key) {
  const Json* value = Member(object, key);
  if (value == nullptr || value->is_null()) return std::optional<std::string>();
  if (!value->is_string()) {
    return absl::InvalidArgumentError(absl::StrFormat("\"%s\" is not a string", key));
  }
  return std::optional<std::string>(value->get_ref<const std::string&>());
}

absl::StatusOr<bool> OptionalBool(const Json& object, const char* key, bool fallback) {
  const Json* value = Member(object, key);
  if (value == nullptr || value->is_null()) return fallback;
  if (!value->is_boolean()) {
    return absl::InvalidArgumentError(absl::StrFormat("\"%s\" is not a boolean", key));
  }
  return value->get<bool>();
}

std::string TypeOf(const Json& component) {
  const Json* type = Member(component, "type");
  return type != nullptr && type->is_string() ? type->get<std::string>() : std::string();
}

std::string Abbreviated(const Json& value) {
  std::string text = value.dump(-1, ' ', /*ensure_ascii=*/true, Json::error_handler_t::replace);
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  return text;
}

absl::Status Unsupported(const char* what, const Json& value) {
  return absl::InvalidArgumentError(
      absl::StrFormat("unsupported %s: %s", what, Abbreviated(value)));
}

// Checks a ByteLevel pre-tokenizer and returns its use_regex.
absl::StatusOr<bool> ByteLevelUsesRegex(const Json& byte_level) {
  CTXMEM_ASSIGN_OR_RETURN(const bool add_prefix_space,
                          OptionalBool(byte_level, "add_prefix_space", true));
  if (add_prefix_space) return Unsupported("pre_tokenizer (add_prefix_space=true)", byte_level);
  return OptionalBool(byte_level, "use_regex", true);
}

// The name of a known pre-tokenizer that runs exactly `patterns`, or "".
std::string PreTokenizerWithPatterns(const std::vector<std::string>& patterns) {
  for (const std::string& name : PreTokenizer::KnownNames()) {
    if (PreTokenizer::PatternsOf(name) == patterns) return name;
  }
  return std::string();
}

// Maps a tokenizer.json pre_tokenizer onto one of PreTokenizer's names:
//   ByteLevel(use_regex=true)                                  -> "gpt2"
//   Sequence[Digits(individual_digits=true), ByteLevel(use_regex=true)] -> "smollm"
//   Sequence[Split(Regex=R, Isolated), ByteLevel(use_regex=false)] -> the name whose regex is R
absl::StatusOr<std::string> PreTokenizerName(const Json& pre) {
  const std::string type = TypeOf(pre);
  if (type == "ByteLevel") {
    CTXMEM_ASSIGN_OR_RETURN(const bool use_regex, ByteLevelUsesRegex(pre));
    if (!use_regex) return Unsupported("pre_tokenizer (ByteLevel without regex)", pre);
    return std::string("gpt2");
  }
  const Json* items = Member(pre, "pretokenizers");
  if (type != "Sequence" || items == nullptr || !items->is_array() || items->size() != 2 ||
      TypeOf((*items)[1]) != "ByteLevel") {
    return Unsupported("pre_tokenizer", pre);
  }
  const Json& first = (*items)[0];
  CTXMEM_ASSIGN_OR_RETURN(const bool use_regex, ByteLevelUsesRegex((*items)[1]));
  std::vector<std::string> patterns;
  if (TypeOf(first) == "Digits") {
    CTXMEM_ASSIGN_OR_RETURN(const bool individual, OptionalBool(first, "individual_digits", false));
    if (!individual || !use_regex) return Unsupported("pre_tokenizer", pre);
    patterns = PreTokenizer::PatternsOf("smollm");
  } else if (TypeOf(first) == "Split") {
    const Json* pattern = Member(first, "pattern");
    const Json* regex = pattern != nullptr ? Member(*pattern, "Regex") : nullptr;
    CTXMEM_ASSIGN_OR_RETURN(const bool invert, OptionalBool(first, "invert", false));
    const Json* behavior = Member(first, "behavior");
    if (regex == nullptr || !regex->is_string() || invert || use_regex || behavior == nullptr ||
        !behavior->is_string() || behavior->get<std::string>() != "Isolated") {
      return Unsupported("pre_tokenizer", pre);
    }
    patterns.push_back(regex->get<std::string>());
  } else {
    return Unsupported("pre_tokenizer", pre);
  }
  std::string name = PreTokenizerWithPatterns(patterns);
  if (name.empty()) return Unsupported("pre_tokenizer (regex not among the known ones)", pre);
  return name;
}

absl::Status CheckNormalizer(const Json* normalizer) {
  if (normalizer == nullptr || normalizer->is_null()) return absl::OkStatus();
  const std::string type = TypeOf(*normalizer);
  // NFC is accepted without being applied: text that is already NFC (nearly all text) encodes
  // the same. llama.cpp does the same for Qwen2.
  if (type == "NFC") return absl::OkStatus();
  const Json* items = Member(*normalizer, "normalizers");
  if (type == "Sequence" && items != nullptr && items->is_array() && items->empty()) {
    return absl::OkStatus();
  }
  return Unsupported("normalizer", *normalizer);
}

absl::Status CheckDecoder(const Json* decoder) {
  if (decoder == nullptr || decoder->is_null() || TypeOf(*decoder) == "ByteLevel") {
    return absl::OkStatus();
  }
  return Unsupported("decoder (byte-level BPE needs ByteLevel)", *decoder);
}

// Reads the BPE model's vocabulary and merges.
absl::Status ReadModel(const Json& model, absl::flat_hash_map<int64_t, std::string>* vocab,
                       TokenizerSpec* spec) {
  const std::string type = TypeOf(model);
  if (!type.empty() && type != "BPE") return Unsupported("model type (need BPE)", model);
  CTXMEM_ASSIGN_OR_RETURN(const bool byte_fallback, OptionalBool(model, "byte_fallback", false));
  if (byte_fallback) return Unsupported("model (byte_fallback=true is not byte-level)", model);
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    CTXMEM_ASSIGN_OR_RETURN(const std::optional<std::string> affix, OptionalString(model, key));
    if (affix.has_value() && !affix->empty()) return Unsupported(key, *Member(model, key));
  }
  const Json* dropout = Member(model, "dropout");
  if (dropout != nullptr && !dropout->is_null() &&
      !(dropout->is_number() && dropout->get<double>() == 0.0)) {
    return Unsupported("model dropout", *dropout);
  }
  CTXMEM_ASSIGN_OR_RETURN(spec->ignore_merges, OptionalBool(model, "ignore_merges", false));

  const Json* vocab_json = Member(model, "vocab");
  if (vocab_json == nullptr || !vocab_json->is_object()) {
    return absl::InvalidArgumentError("model.vocab is missing or not an object");
  }
  vocab->reserve(vocab_json->size());
  for (auto it = vocab_json->begin(); it != vocab_json->end(); ++it) {
    const Json& id = it.value();
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > kMaxTokenId) {
      return absl::InvalidArgumentError(
          absl::StrFormat("model.vocab[\"%s\"]=%s is not a token id in [0, %d]", it.key(),
                          Abbreviated(id), kMaxTokenId));
    }
    if (!vocab->emplace(id.get<int64_t>(), it.key()).second) {
      return absl::InvalidArgumentError(
          absl::StrFormat("model.vocab gives id %d to both \"%s\" and \"%s\"", id.get<int64_t>(),
                          (*vocab)[id.get<int64_t>()], it.key()));
    }
  }

  const Json* merges = Member(model, "merges");
  if (merges == nullptr || !merges->is_array()) {
    return absl::InvalidArgumentError("model.merges is missing or not an array");
  }
  spec->merges.reserve(merges->size());
  for (size_t rank = 0; rank < merges->size(); ++rank) {
    const Json& merge = (*merges)[rank];
    if (merge.is_string()) {
      const std::string& text = merge.get_ref<const std::string&>();
      const size_t space = text.find(' ', 1);
      if (space == std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrFormat("model.merges[%d]=\"%s\" has no space", rank, text));
      }
      spec->merges.emplace_back(text.substr(0, space), text.substr(space + 1));
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      spec->merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
    } else {
      return absl::InvalidArgumentError(
          absl::StrFormat("model.merges[%d]=%s is not a pair", rank, Abbreviated(merge)));
    }
  }
  return absl::OkStatus();
}

// Reads added_tokens into `vocab` and `types` (id -> kControl / kUserDefined).
absl::Status ReadAddedTokens(const Json* added, absl::flat_hash_map<int64_t, std::string>* vocab,
                             absl::flat_hash_map<int64_t, TokenType>* types) {
  if (added == nullptr || added->is_null()) return absl::OkStatus();
  if (!added->is_array()) return absl::InvalidArgumentError("added_tokens is not an array");
  for (size_t i = 0; i < added->size(); ++i) {
    const Json& token = (*added)[i];
    const Json* id = Member(token, "id");
    const Json* content = Member(token, "content");
    if (id == nullptr || !id->is_number_integer() || id->get<int64_t>() < 0 ||
        id->get<int64_t>() > kMaxTokenId || content == nullptr || !content->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("added_tokens[%d]=%s needs an id in [0, %d] and a content string", i,
                          Abbreviated(token), kMaxTokenId));
    }
    for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
      CTXMEM_ASSIGN_OR_RETURN(const bool set, OptionalBool(token, flag, false));
      if (set) return Unsupported(flag, token);
    }
    CTXMEM_ASSIGN_OR_RETURN(const bool special, OptionalBool(token, "special", false));
    const int64_t token_id = id->get<int64_t>();
    const std::string& text = content->get_ref<const std::string&>();
    auto [it, inserted] = vocab->emplace(token_id, text);
    if (!inserted && it->second != text) {
      return absl::InvalidArgumentError(
          absl::StrFormat("added token \"%s\" has id %d, which the vocabulary gives to \"%s\"",
                          text, token_id, it->second));
    }
    (*types)[token_id] = special ? TokenType::kControl : TokenType::kUserDefined;
  }
  return absl::OkStatus();
}

// Finds BOS/EOS added by a TemplateProcessing post-processor (possibly inside a Sequence).
absl::Status ReadPostProcessor(const Json* post, std::optional<std::string>* bos,
                               std::optional<std::string>* eos) {
  if (post == nullptr || post->is_null()) return absl::OkStatus();
  const std::string type = TypeOf(*post);
  if (type == "ByteLevel") return absl::OkStatus();
  if (type == "Sequence") {
    const Json* items = Member(*post, "processors");
    if (items == nullptr || !items->is_array()) return Unsupported("post_processor", *post);
    for (const Json& item : *items) CTXMEM_RETURN_IF_ERROR(ReadPostProcessor(&item, bos, eos));
    return absl::OkStatus();
  }
  const Json* single = Member(*post, "single");
  if (type != "TemplateProcessing" || single == nullptr || !single->is_array()) {
    return Unsupported("post_processor", *post);
  }
  for (size_t i = 0; i < single->size(); ++i) {
    const Json* special = Member((*single)[i], "SpecialToken");
    const Json* name = special != nullptr ? Member(*special, "id") : nullptr;
    if (name == nullptr || !name->is_string()) continue;
    if (i == 0) *bos = name->get<std::string>();
    if (i + 1 == single->size()) *eos = name->get<std::string>();
  }
  return absl::OkStatus();
}

// A special token of tokenizer_config.json: a string, {"content": ...} or null.
absl::StatusOr<std::optional<std::string>> ConfigToken(const Json& config, const char* key) {
  const Json* value = Member(config, key);
  if (value != nullptr && value->is_object()) return OptionalString(*value, "content");
  return OptionalString(config, key);
}

absl::StatusOr<std::string> ConfigChatTemplate(const Json& config) {
  const Json* value = Member(config, "chat_template");
  if (value == nullptr || value->is_null()) return std::string();
  if (value->is_string()) return value->get<std::string>();
  if (value->is_array()) {  // [{"name": "default", "template": "..."}, ...]
    for (const Json& entry : *value) {
      CTXMEM_ASSIGN_OR_RETURN(const std::optional<std::string> name, OptionalString(entry, "name"));
      if (name == "default") {
        CTXMEM_ASSIGN_OR_RETURN(const std::optional<std::string> text,
                                OptionalString(entry, "template"));
        return text.value_or("");
      }
    }
  }
  return Unsupported("chat_template", *value);
}

absl::Status ResolveId(const std::optional<std::string>& token, const char* what,
                       const absl::flat_hash_map<std::string, int32_t>& ids, int32_t* id) {
  if (!token.has_value()) return absl::OkStatus();
  auto it = ids.find(*token);
  if (it == ids.end()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s \"%s\" is not in the vocabulary", what, *token));
  }
  *id = it->second;
  return absl::OkStatus();
}

absl::StatusOr<TokenizerSpec> SpecFromJson(const Json& root, const Json& config) {
  if (!root.is_object()) return absl::InvalidArgumentError("top level is not an object");
  TokenizerSpec spec;
  const Json* model = Member(root, "model");
  if (model == nullptr) return absl::InvalidArgumentError("no \"model\"");
  absl::flat_hash_map<int64_t, std::string> vocab;
  absl::flat_hash_map<int64_t, TokenType> types;
  CTXMEM_RETURN_IF_ERROR(ReadModel(*model, &vocab, &spec));
  CTXMEM_RETURN_IF_ERROR(ReadAddedTokens(Member(root, "added_tokens"), &vocab, &types));
  CTXMEM_RETURN_IF_ERROR(CheckNormalizer(Member(root, "normalizer")));
  CTXMEM_RETURN_IF_ERROR(CheckDecoder(Member(root, "decoder")));
  const Json* pre = Member(root, "pre_tokenizer");
  if (pre == nullptr || pre->is_null()) return absl::InvalidArgumentError("no pre_tokenizer");
  CTXMEM_ASSIGN_OR_RETURN(spec.pre_tokenizer, PreTokenizerName(*pre));

  // Ids must be dense: [0, n_vocab) with no holes.
  const size_t n_vocab = vocab.size();
  spec.tokens.resize(n_vocab);
  spec.token_types.assign(n_vocab, TokenType::kNormal);
  for (auto& [id, text] : vocab) {
    if (static_cast<size_t>(id) >= n_vocab) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "token ids are not dense: id %d (\"%s\") with only %d tokens", id, text, n_vocab));
    }
    spec.tokens[id] = std::move(text);
  }
  for (const auto& [id, type] : types) spec.token_types[id] = type;
  absl::flat_hash_map<std::string, int32_t> ids;
  ids.reserve(n_vocab);
  for (size_t id = 0; id < n_vocab; ++id) ids.emplace(spec.tokens[id], static_cast<int32_t>(id));

  std::optional<std::string> bos, eos;
  CTXMEM_RETURN_IF_ERROR(ReadPostProcessor(Member(root, "post_processor"), &bos, &eos));
  spec.add_bos = bos.has_value();
  spec.add_eos = eos.has_value();
  CTXMEM_ASSIGN_OR_RETURN(const std::optional<std::string> bpe_unk,
                          OptionalString(*model, "unk_token"));
  CTXMEM_RETURN_IF_ERROR(ResolveId(bpe_unk, "model.unk_token", ids, &spec.bpe_unk_id));
  std::optional<std::string> unk = bpe_unk;
  std::optional<std::string> pad;
  if (!config.is_null()) {
    CTXMEM_ASSIGN_OR_RETURN(std::optional<std::string> value, ConfigToken(config, "bos_token"));
    if (value.has_value()) bos = value;
    CTXMEM_ASSIGN_OR_RETURN(value, ConfigToken(config, "eos_token"));
    if (value.has_value()) eos = value;
    CTXMEM_ASSIGN_OR_RETURN(value, ConfigToken(config, "unk_token"));
    if (value.has_value()) unk = value;
    CTXMEM_ASSIGN_OR_RETURN(pad, ConfigToken(config, "pad_token"));
    CTXMEM_ASSIGN_OR_RETURN(spec.add_bos, OptionalBool(config, "add_bos_token", spec.add_bos));
    CTXMEM_ASSIGN_OR_RETURN(spec.add_eos, OptionalBool(config, "add_eos_token", spec.add_eos));
    CTXMEM_ASSIGN_OR_RETURN(spec.chat_template, ConfigChatTemplate(config));
  }
  CTXMEM_RETURN_IF_ERROR(ResolveId(bos, "bos_token", ids, &spec.bos_id));
  CTXMEM_RETURN_IF_ERROR(ResolveId(eos, "eos_token", ids, &spec.eos_id));
  CTXMEM_RETURN_IF_ERROR(ResolveId(unk, "unk_token", ids, &spec.unk_id));
  CTXMEM_RETURN_IF_ERROR(ResolveId(pad, "pad_token", ids, &spec.pad_id));
  return spec;
}

}  // namespace

absl::StatusOr<TokenizerSpec> TokenizerSpecFromJson(const std::string& tokenizer_json_path) {
  CTXMEM_ASSIGN_OR_RETURN(const Json root, ReadJsonFile(tokenizer_json_path));
  Json config;  // null when there is no tokenizer_config.json
  const std::filesystem::path config_path =
      std::filesystem::path(tokenizer_json_path).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::exists(config_path, ec)) {
    CTXMEM_ASSIGN_OR_RETURN(config, ReadJsonFile(config_path.string()));
    if (!config.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: top level is not an object", config_path.string()));
    }
  }
  absl::StatusOr<TokenizerSpec> spec = SpecFromJson(root, config);
  if (!spec.ok()) return WithContext(spec.status(), tokenizer_json_path);
  return spec;
}

absl::StatusOr<TokenizerSpec> TokenizerSpecFromJsonText(std::string_view tokenizer_json,
                                                        std::string_view tokenizer_config_json) {
  const Json root = Json::parse(tokenizer_json, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return absl::InvalidArgumentError("tokenizer.json: not valid JSON");
  Json config;
  if (!tokenizer_config_json.empty()) {
    config = Json::parse(tokenizer_config_json, /*cb=*/nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object()) {
      return absl::InvalidArgumentError("tokenizer_config.json: not a JSON object");
    }
  }
  return SpecFromJson(root, config);
}

}  // namespace ctxmem::tokenizer
