// The three ways a TokenizerSpec arrives: tokenizer.json (+ tokenizer_config.json), the GGUF
// tokenizer.ggml.* keys, and llama2.c's tokenizer .bin.
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/common/error.h"
#include "core/common/paths.h"
#include "core/text/tokenizer.h"
#include "core/text/tokenizer_bpe.h"
#include "core/text/tokenizer_pretokenize.h"

namespace aqlm {
namespace {

using nlohmann::json;

const std::string kSpacePiece = "\xE2\x96\x81";  // "▁"

std::string type_of(const json& j) { return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : ""; }

// A component ("pre_tokenizer", "normalizer") as a flat list: a Sequence becomes its members.
std::vector<json> flatten(const json& component, const char* members) {
  if (component.is_null()) return {};
  if (type_of(component) == "Sequence") return component.at(members).get<std::vector<json>>();
  return {component};
}

// Token names in tokenizer_config.json are strings or {"content": ...} objects.
std::optional<std::string> config_token(const json* config, const char* key) {
  if (!config || !config->contains(key)) return std::nullopt;
  const json& v = (*config)[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v["content"].get<std::string>();
  return std::nullopt;
}

int32_t id_of_token(const TokenizerSpec& spec, const std::string& token, const std::string& where, const char* role) {
  for (const AddedToken& t : spec.added_tokens) {
    if (t.content == token) return t.id;
  }
  for (size_t id = 0; id < spec.vocab.size(); ++id) {
    if (spec.vocab[id] == token) return int32_t(id);
  }
  fail(where, ": the ", role, " '", token, "' is not in the vocabulary");
}

void detect_byte_level(const std::vector<json>& pre, TokenizerSpec& spec, const std::string& where) {
  spec.kind = TokenizerKind::ByteLevelBpe;
  spec.byte_fallback = false;
  spec.add_dummy_prefix = false;
  const json& byte_level = pre.back();
  AQLM_CHECK(type_of(byte_level) == "ByteLevel", where, ": unsupported pre_tokenizer: ByteLevel must come last");
  AQLM_CHECK(!byte_level.value("add_prefix_space", false), where,
             ": unsupported pre_tokenizer: ByteLevel with add_prefix_space=true");
  const bool regex = byte_level.value("use_regex", true);
  if (pre.size() == 1 && regex) {
    spec.pre_tokenizer = PreTokenizer::Gpt2;
  } else if (pre.size() == 2 && regex && type_of(pre[0]) == "Digits" && pre[0].value("individual_digits", false)) {
    spec.pre_tokenizer = PreTokenizer::DigitsGpt2;
  } else if (pre.size() == 2 && !regex && type_of(pre[0]) == "Split") {
    const json& split = pre[0];
    const std::string pattern = split.contains("pattern") && split["pattern"].contains("Regex")
                                    ? split["pattern"]["Regex"].get<std::string>()
                                    : "";
    AQLM_CHECK(split.value("behavior", "") == "Isolated" && !split.value("invert", false), where,
               ": unsupported pre_tokenizer: Split must be Isolated and not inverted");
    if (pattern == kLlama3Pattern) spec.pre_tokenizer = PreTokenizer::Llama3;
    else if (pattern == kQwen2Pattern) spec.pre_tokenizer = PreTokenizer::Qwen2;
    else fail(where, ": unsupported pre_tokenizer Split pattern '", pattern, "' (supported: the Llama-3 and Qwen2 patterns)");
  } else {
    std::string names;
    for (const json& p : pre) names += (names.empty() ? "" : ", ") + type_of(p);
    fail(where, ": unsupported byte-level pre_tokenizer sequence [", names, "]");
  }
}

void detect_sentencepiece(const std::vector<json>& pre, const std::vector<json>& norm, TokenizerSpec& spec,
                          const std::string& where) {
  spec.kind = TokenizerKind::SentencePieceBpe;
  spec.pre_tokenizer = PreTokenizer::None;
  auto is_space_replace = [](const json& n) {
    return type_of(n) == "Replace" && n.contains("pattern") && n["pattern"].value("String", "") == " " &&
           n.value("content", "") == kSpacePiece;
  };
  // Legacy Llama / Mistral: normalizer Sequence[Prepend("▁"), Replace(" ", "▁")], no pre-tokenizer.
  if (pre.empty()) {
    if (norm.size() == 2 && type_of(norm[0]) == "Prepend" && norm[0].value("prepend", "") == kSpacePiece &&
        is_space_replace(norm[1])) {
      spec.add_dummy_prefix = true;
      return;
    }
    if (norm.size() == 1 && is_space_replace(norm[0])) {
      spec.add_dummy_prefix = false;
      return;
    }
    fail(where, ": unsupported tokenizer.json: a BPE model without a pre_tokenizer needs the SentencePiece normalizer "
                "Sequence[Prepend(\"\u2581\"), Replace(\" \", \"\u2581\")]");
  }
  // Newer files: Metaspace pre-tokenizer without splitting.
  const json& meta = pre[0];
  AQLM_CHECK(pre.size() == 1 && type_of(meta) == "Metaspace" && norm.empty(), where,
             ": unsupported pre_tokenizer '", type_of(pre[0]), "' (supported: ByteLevel, Digits+ByteLevel, "
             "Split+ByteLevel, Metaspace)");
  AQLM_CHECK(meta.value("replacement", "") == kSpacePiece && !meta.value("split", true), where,
             ": unsupported Metaspace pre_tokenizer (needs replacement \"\u2581\" and split=false)");
  const std::string scheme = meta.value("prepend_scheme", "always");
  spec.add_dummy_prefix = scheme != "never";
  spec.dummy_prefix = scheme == "first" ? DummyPrefix::MetaspaceFirst : DummyPrefix::MetaspaceAlways;
}

// BOS / EOS from a TemplateProcessing post-processor: a special token before or after $A.
void template_specials(const json& post, TokenizerSpec& spec, std::string& bos, std::string& eos) {
  for (const json& p : flatten(post, "processors")) {
    if (type_of(p) != "TemplateProcessing" || !p.contains("single")) continue;
    const json& single = p["single"];
    auto special_at = [&](const json& item) -> std::string {
      if (!item.contains("SpecialToken")) return "";
      return item["SpecialToken"].value("id", "");
    };
    if (!single.empty()) {
      bos = special_at(single.front());
      eos = single.size() > 1 ? special_at(single.back()) : "";
    }
    spec.add_bos = !bos.empty();
    spec.add_eos = !eos.empty();
  }
}

TokenizerSpec spec_from_hf_json(const json& tj, const json* config, const std::string& where) {
  AQLM_CHECK(tj.is_object() && tj.contains("model") && tj["model"].is_object(), where,
             ": not a tokenizer.json (no \"model\" object)");
  const json& model = tj["model"];
  // Some older files leave the model's type out; a model with merges is BPE.
  const std::string type = type_of(model).empty() && model.contains("merges") ? "BPE" : type_of(model);
  AQLM_CHECK(type == "BPE", where, ": unsupported tokenizer model type '", type, "' (supported: BPE)");
  AQLM_CHECK(model.value("dropout", json()).is_null(), where, ": BPE dropout is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json v = model.value(key, json());
    AQLM_CHECK(v.is_null() || v == "", where, ": BPE ", key, " is not supported");
  }
  AQLM_CHECK(model.contains("vocab") && model["vocab"].is_object(), where, ": the BPE model has no vocab object");

  TokenizerSpec spec;
  // Ids: the model vocabulary plus added tokens, which may extend it (Llama-3's 128000..128255).
  std::vector<std::pair<int64_t, std::string>> entries;
  for (const auto& [piece, id] : model["vocab"].items()) {
    AQLM_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0, where, ": vocab entry '", piece, "' has no valid id");
    entries.emplace_back(id.get<int64_t>(), piece);
  }
  if (tj.contains("added_tokens")) {
    for (const json& t : tj["added_tokens"]) {
      AQLM_CHECK(t.contains("id") && t["id"].is_number_integer() && t.contains("content") && t["content"].is_string(),
                 where, ": an added token lacks its id or content");
      AQLM_CHECK(!t.value("single_word", false), where, ": added token '", t["content"].get<std::string>(),
                 "' has single_word=true, which is not supported");
      AddedToken token{t["id"].get<int32_t>(), t["content"].get<std::string>(), t.value("special", false)};
      token.lstrip = t.value("lstrip", false);
      token.rstrip = t.value("rstrip", false);
      spec.added_tokens.push_back(token);
    }
  }
  int64_t max_id = -1;
  for (const auto& e : entries) max_id = std::max(max_id, e.first);
  for (const AddedToken& t : spec.added_tokens) max_id = std::max<int64_t>(max_id, t.id);
  AQLM_CHECK(max_id >= 0, where, ": the vocabulary is empty");
  AQLM_CHECK(max_id < (int64_t(1) << 24), where, ": token id ", max_id, " is implausibly large");
  std::vector<uint8_t> filled(size_t(max_id + 1), 0);
  spec.vocab.resize(size_t(max_id + 1));
  for (const auto& [id, piece] : entries) {
    AQLM_CHECK(!filled[size_t(id)], where, ": vocab id ", id, " is given to both '", spec.vocab[size_t(id)], "' and '",
               piece, "'");
    spec.vocab[size_t(id)] = piece;
    filled[size_t(id)] = 1;
  }
  for (const AddedToken& t : spec.added_tokens) {
    if (!filled[size_t(t.id)]) spec.vocab[size_t(t.id)] = t.content;
    filled[size_t(t.id)] = 1;
  }
  for (size_t id = 0; id < filled.size(); ++id) {
    AQLM_CHECK(filled[id], where, ": vocab size mismatch: ids run to ", max_id, " but id ", id, " has no token");
  }

  if (model.contains("merges")) {
    for (const json& m : model["merges"]) {
      if (m.is_array() && m.size() == 2) {
        spec.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
        continue;
      }
      AQLM_CHECK(m.is_string(), where, ": a merge is neither \"a b\" nor [a, b]");
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      AQLM_CHECK(space != std::string::npos && s.find(' ', space + 1) == std::string::npos, where, ": merge '", s,
                 "' is not two pieces separated by one space");
      spec.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    }
  }
  spec.byte_fallback = model.value("byte_fallback", false);
  spec.ignore_merges = model.value("ignore_merges", false);

  const std::vector<json> pre = flatten(tj.value("pre_tokenizer", json()), "pretokenizers");
  const std::vector<json> norm = flatten(tj.value("normalizer", json()), "normalizers");
  bool byte_level = false;
  for (const json& p : pre) byte_level = byte_level || type_of(p) == "ByteLevel";
  if (byte_level) {
    detect_byte_level(pre, spec, where);
    for (const json& n : norm) {
      AQLM_CHECK(type_of(n) == "NFC", where, ": unsupported normalizer '", type_of(n),
                 "' for a byte-level tokenizer (supported: NFC)");
      spec.nfc = true;
    }
  } else {
    detect_sentencepiece(pre, norm, spec, where);
  }

  std::string bos, eos;
  template_specials(tj.value("post_processor", json()), spec, bos, eos);
  if (auto t = config_token(config, "bos_token")) bos = *t;
  if (auto t = config_token(config, "eos_token")) eos = *t;
  if (config && config->contains("add_bos_token") && (*config)["add_bos_token"].is_boolean())
    spec.add_bos = (*config)["add_bos_token"].get<bool>();
  if (config && config->contains("add_eos_token") && (*config)["add_eos_token"].is_boolean())
    spec.add_eos = (*config)["add_eos_token"].get<bool>();
  if (!bos.empty()) spec.bos_id = id_of_token(spec, bos, where, "bos_token");
  if (!eos.empty()) spec.eos_id = id_of_token(spec, eos, where, "eos_token");
  const json unk = model.value("unk_token", json());
  if (unk.is_string()) spec.unk_id = id_of_token(spec, unk.get<std::string>(), where, "unk_token");
  if (auto t = config_token(config, "pad_token")) spec.pad_id = id_of_token(spec, *t, where, "pad_token");
  bpe::check_spec(spec, where);
  return spec;
}

}  // namespace

TokenizerSpec tokenizer_spec_from_hf_json(const json& tokenizer_json, const json* tokenizer_config,
                                          const std::string& where) {
  try {
    return spec_from_hf_json(tokenizer_json, tokenizer_config, where);
  } catch (const json::exception& e) {
    fail(where, ": malformed tokenizer.json: ", e.what());
  }
}

TokenizerSpec tokenizer_spec_from_gguf(const json& keys, const std::string& where) {
  auto get = [&](const char* key) -> const json* {
    const std::string full = std::string("tokenizer.ggml.") + key;
    return keys.contains(full) ? &keys[full] : nullptr;
  };
  try {
    const json* model = get("model");
    AQLM_CHECK(model && model->is_string(), where, ": no tokenizer.ggml.model key");
    const json* tokens = get("tokens");
    AQLM_CHECK(tokens && tokens->is_array() && !tokens->empty(), where, ": no tokenizer.ggml.tokens array");
    const size_t n = tokens->size();

    TokenizerSpec spec;
    spec.vocab = tokens->get<std::vector<std::string>>();
    if (const json* scores = get("scores")) spec.scores = scores->get<std::vector<float>>();
    std::vector<int> types;
    if (const json* t = get("token_type")) types = t->get<std::vector<int>>();
    AQLM_CHECK(spec.scores.empty() || spec.scores.size() == n, where, ": vocab size mismatch: ", n, " tokens but ",
               spec.scores.size(), " scores");
    AQLM_CHECK(types.empty() || types.size() == n, where, ": vocab size mismatch: ", n, " tokens but ", types.size(),
               " token types");
    // llama.cpp token types: 2 unknown and 3 control are special; 4 user-defined is parsed in text always.
    for (size_t id = 0; id < types.size(); ++id) {
      if (types[id] == 2 || types[id] == 3 || types[id] == 4)
        spec.added_tokens.push_back({int32_t(id), spec.vocab[id], types[id] != 4});
    }

    const std::string kind = model->get<std::string>();
    if (kind == "gpt2") {
      spec.kind = TokenizerKind::ByteLevelBpe;
      spec.byte_fallback = false;
      spec.add_dummy_prefix = false;
      const json* merges = get("merges");
      AQLM_CHECK(merges && merges->is_array(), where, ": a gpt2 tokenizer without tokenizer.ggml.merges");
      for (const json& m : *merges) {
        const std::string s = m.get<std::string>();
        const size_t space = s.find(' ');
        AQLM_CHECK(space != std::string::npos && s.find(' ', space + 1) == std::string::npos, where, ": merge '", s,
                   "' is not two pieces separated by one space");
        spec.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      }
      const json* pre = get("pre");
      const std::string pre_name = pre && pre->is_string() ? pre->get<std::string>() : "gpt-2";
      if (pre_name == "gpt-2" || pre_name == "gpt2") {
        spec.pre_tokenizer = PreTokenizer::Gpt2;
      } else if (pre_name == "smollm" || pre_name == "starcoder" || pre_name == "refact") {
        spec.pre_tokenizer = PreTokenizer::DigitsGpt2;
      } else if (pre_name == "llama-bpe" || pre_name == "llama3") {
        spec.pre_tokenizer = PreTokenizer::Llama3;
        spec.ignore_merges = true;  // as llama.cpp and Llama-3's tokenizer.json do
      } else if (pre_name == "qwen2") {
        spec.pre_tokenizer = PreTokenizer::Qwen2;  // no NFC: llama.cpp does not normalize either
      } else {
        fail(where, ": unsupported pre-tokenizer '", pre_name, "' (supported: gpt-2, smollm, starcoder, refact, "
             "llama-bpe, qwen2)");
      }
    } else if (kind == "llama") {
      spec.kind = TokenizerKind::SentencePieceBpe;
      AQLM_CHECK(!spec.scores.empty(), where, ": a llama (SentencePiece) tokenizer without tokenizer.ggml.scores");
      spec.byte_fallback = true;
    } else {
      fail(where, ": unsupported tokenizer model '", kind, "' (supported: llama, gpt2)");
    }

    auto id_key = [&](const char* key) -> int32_t {
      const json* v = get(key);
      return v && v->is_number_integer() ? v->get<int32_t>() : -1;
    };
    auto bool_key = [&](const char* key, bool fallback) {
      const json* v = get(key);
      return v && v->is_boolean() ? v->get<bool>() : fallback;
    };
    spec.bos_id = id_key("bos_token_id");
    spec.eos_id = id_key("eos_token_id");
    spec.unk_id = id_key("unknown_token_id");
    spec.pad_id = id_key("padding_token_id");
    // llama.cpp's defaults: SentencePiece models add BOS; byte-level ones say so explicitly.
    spec.add_bos = bool_key("add_bos_token", spec.kind == TokenizerKind::SentencePieceBpe) && spec.bos_id >= 0;
    spec.add_eos = bool_key("add_eos_token", false) && spec.eos_id >= 0;
    if (spec.kind == TokenizerKind::SentencePieceBpe) spec.add_dummy_prefix = bool_key("add_space_prefix", true);
    bpe::check_spec(spec, where);
    return spec;
  } catch (const json::exception& e) {
    fail(where, ": malformed tokenizer.ggml keys: ", e.what());
  }
}

TokenizerSpec tokenizer_spec_from_llama2c(const std::string& path, int expected_vocab) {
  const std::string data = read_text_file(path);
  size_t pos = 0;
  auto read = [&](void* dst, size_t size, const char* what, size_t token) {
    AQLM_CHECK(pos + size <= data.size(), path, ": truncated: ", what, " of token ", token, " needs bytes ", pos, "..",
               pos + size, " but the file has ", data.size());
    std::memcpy(dst, data.data() + pos, size);
    pos += size;
  };
  int32_t max_token_length = 0;
  read(&max_token_length, 4, "the header (max_token_length)", 0);
  AQLM_CHECK(max_token_length > 0 && max_token_length < 65536, path, ": not a llama2.c tokenizer (max_token_length ",
             max_token_length, ")");

  TokenizerSpec spec;
  spec.kind = TokenizerKind::Llama2c;
  for (size_t id = 0; expected_vocab > 0 ? id < size_t(expected_vocab) : pos < data.size(); ++id) {
    float score = 0;
    int32_t length = 0;
    read(&score, 4, "the score", id);
    read(&length, 4, "the length", id);
    AQLM_CHECK(length >= 0 && length <= max_token_length, path, ": token ", id, " has length ", length,
               " (the header allows ", max_token_length, ")");
    std::string piece(size_t(length), '\0');
    read(piece.data(), size_t(length), "the text", id);
    spec.vocab.push_back(std::move(piece));
    spec.scores.push_back(score);
  }
  AQLM_CHECK(pos == data.size(), path, ": vocab size mismatch: the model has ", expected_vocab, " tokens but the file has ",
             data.size() - pos, " more bytes after them");
  AQLM_CHECK(spec.vocab.size() >= 3, path, ": a llama2.c tokenizer needs at least <unk>, <s> and </s>");
  // llama2.c's fixed layout: 0 <unk>, 1 BOS, 2 EOS. Its exporter writes BOS / EOS as "\n<s>\n" and
  // "\n</s>\n" so that its own decoder prints them on lines of their own; named plainly here so
  // that parse_special finds "<s>" in a prompt.
  for (int id = 1; id <= 2; ++id) {
    std::string& piece = spec.vocab[size_t(id)];
    const size_t b = piece.find_first_not_of('\n'), e = piece.find_last_not_of('\n');
    if (b != std::string::npos) piece = piece.substr(b, e - b + 1);
  }
  spec.added_tokens = {{0, spec.vocab[0], true}, {1, spec.vocab[1], true}, {2, spec.vocab[2], true}};
  spec.unk_id = 0;
  spec.bos_id = 1;
  spec.eos_id = 2;
  spec.add_bos = true;
  spec.add_eos = false;
  spec.add_dummy_prefix = true;
  spec.byte_fallback = true;
  bpe::check_spec(spec, path);
  return spec;
}

}  // namespace aqlm
