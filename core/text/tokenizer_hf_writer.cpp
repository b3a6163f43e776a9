// Writes a TokenizerSpec as the Hugging Face tokenizer.json and tokenizer_config.json fields, so
// that a compressed model folder works with `tokenizers` / transformers and with our loader.
#include <algorithm>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/common/error.h"
#include "core/text/tokenizer.h"
#include "core/text/tokenizer_bpe.h"
#include "core/text/tokenizer_pretokenize.h"
#include "core/text/unicode.h"

namespace aqlm {
namespace {

using nlohmann::json;

const std::string kSpacePiece = "\xE2\x96\x81";  // "▁"

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = text.find(from, pos)) != std::string::npos; pos += to.size()) text.replace(pos, from.size(), to);
  return text;
}

// tokenizer.json's BPE merges by rank from SentencePiece scores, the way transformers converts a
// SentencePiece model: every split of a piece into two vocab pieces, best-scored piece first,
// then longer left part, then longer right part.
std::vector<std::pair<std::string, std::string>> merges_from_scores(const std::vector<std::string>& vocab,
                                                                    const std::vector<float>& scores,
                                                                    const std::vector<uint8_t>& mergeable) {
  std::unordered_map<std::string, int32_t> id_of;
  for (size_t id = 0; id < vocab.size(); ++id) {
    if (mergeable[id]) id_of.emplace(vocab[id], int32_t(id));
  }
  struct Merge {
    float score;
    size_t left_chars, right_chars;
    int32_t left, right;
  };
  auto chars = [](std::string_view s) {
    size_t n = 0;
    for (size_t pos = 0; pos < s.size(); pos += size_t(unicode::decode(s, pos).length)) ++n;
    return n;
  };
  std::vector<Merge> merges;
  for (size_t id = 0; id < vocab.size(); ++id) {
    if (!mergeable[id]) continue;
    const std::string& piece = vocab[id];
    std::vector<Merge> local;
    for (size_t cut = size_t(unicode::decode(piece, 0).length); cut < piece.size();
         cut += size_t(unicode::decode(piece, cut).length)) {
      const auto l = id_of.find(piece.substr(0, cut)), r = id_of.find(piece.substr(cut));
      if (l != id_of.end() && r != id_of.end())
        local.push_back({scores[id], chars(l->first), chars(r->first), l->second, r->second});
    }
    std::sort(local.begin(), local.end(),
              [](const Merge& a, const Merge& b) { return std::pair(a.left, a.right) < std::pair(b.left, b.right); });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) {
    return std::tuple(a.score, a.left_chars, a.right_chars) > std::tuple(b.score, b.left_chars, b.right_chars);
  });
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (const Merge& m : merges) out.emplace_back(vocab[size_t(m.left)], vocab[size_t(m.right)]);
  return out;
}

json byte_level_pre_tokenizer(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

json pre_tokenizer_json(PreTokenizer pre) {
  auto split = [](std::string_view pattern) {
    return json{{"type", "Split"}, {"pattern", {{"Regex", std::string(pattern)}}}, {"behavior", "Isolated"},
                {"invert", false}};
  };
  switch (pre) {
    case PreTokenizer::Gpt2: return byte_level_pre_tokenizer(true);
    case PreTokenizer::DigitsGpt2:
      return {{"type", "Sequence"},
              {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level_pre_tokenizer(true)}}};
    case PreTokenizer::Llama3:
      return {{"type", "Sequence"}, {"pretokenizers", {split(kLlama3Pattern), byte_level_pre_tokenizer(false)}}};
    case PreTokenizer::Qwen2:
      return {{"type", "Sequence"}, {"pretokenizers", {split(kQwen2Pattern), byte_level_pre_tokenizer(false)}}};
    case PreTokenizer::None: break;
  }
  return nullptr;
}

json template_processing(const TokenizerSpec& spec, const std::vector<std::string>& pieces) {
  json single = json::array(), pair = json::array(), special = json::object();
  auto add_special = [&](int32_t id, json& seq, int type_id) {
    seq.push_back({{"SpecialToken", {{"id", pieces[size_t(id)]}, {"type_id", type_id}}}});
    special[pieces[size_t(id)]] = {{"id", pieces[size_t(id)]}, {"ids", {id}}, {"tokens", {pieces[size_t(id)]}}};
  };
  for (int part = 0; part < 2; ++part) {
    json& seq = part == 0 ? single : pair;
    for (int s = 0; s <= part; ++s) {
      if (spec.add_bos) add_special(spec.bos_id, seq, s);
      seq.push_back({{"Sequence", {{"id", s == 0 ? "A" : "B"}, {"type_id", s}}}});
      if (spec.add_eos) add_special(spec.eos_id, seq, s);
    }
  }
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", special}};
}

}  // namespace

json tokenizer_spec_to_hf_json(const TokenizerSpec& spec) {
  bpe::check_spec(spec, "tokenizer.json writer");
  const bool byte_level = spec.kind == TokenizerKind::ByteLevelBpe;
  std::vector<uint8_t> added(spec.vocab.size(), 0);
  for (const AddedToken& t : spec.added_tokens) added[size_t(t.id)] = 1;

  // llama2.c pieces hold real spaces; tokenizer.json spells them "▁" like any SentencePiece model.
  std::vector<std::string> pieces = spec.vocab;
  if (spec.kind == TokenizerKind::Llama2c) {
    for (size_t id = 0; id < pieces.size(); ++id) {
      if (added[id]) continue;
      AQLM_CHECK(pieces[id].find(kSpacePiece) == std::string::npos, "tokenizer.json writer: llama2.c piece ", id,
                 " already contains \u2581, so spaces cannot be written as \u2581");
      pieces[id] = replace_all(pieces[id], " ", kSpacePiece);
    }
  }

  json vocab = json::object();
  for (size_t id = 0; id < pieces.size(); ++id) {
    if (vocab.contains(pieces[id])) {
      AQLM_CHECK(added[id], "tokenizer.json writer: the piece '", pieces[id], "' is at ids ",
                 vocab[pieces[id]].get<int64_t>(), " and ", id, "; tokenizer.json can hold only one");
      continue;  // an added token of the same content: it has its own entry in added_tokens
    }
    vocab[pieces[id]] = id;
  }
  std::vector<std::pair<std::string, std::string>> merges = spec.merges;
  if (merges.empty() && !byte_level) {
    std::vector<uint8_t> mergeable(pieces.size(), 1);
    for (size_t id = 0; id < pieces.size(); ++id) mergeable[id] = !added[id] && bpe::parse_byte_piece(pieces[id]) < 0;
    merges = merges_from_scores(pieces, spec.scores, mergeable);
  } else if (spec.kind == TokenizerKind::Llama2c) {
    for (auto& [l, r] : merges) l = replace_all(l, " ", kSpacePiece), r = replace_all(r, " ", kSpacePiece);
  }
  json merges_json = json::array();
  for (const auto& [l, r] : merges) {
    AQLM_CHECK(l.find(' ') == std::string::npos && r.find(' ') == std::string::npos,
               "tokenizer.json writer: merge '", l, "' + '", r, "' contains a space");
    merges_json.push_back(l + " " + r);
  }

  json added_tokens = json::array();
  for (const AddedToken& t : spec.added_tokens) {
    added_tokens.push_back({{"id", t.id}, {"content", t.content}, {"single_word", false}, {"lstrip", t.lstrip},
                            {"rstrip", t.rstrip}, {"normalized", false}, {"special", t.special}});
  }
  const json unk = spec.unk_id >= 0 ? json(pieces[size_t(spec.unk_id)]) : json(nullptr);
  json model = {{"type", "BPE"},         {"dropout", nullptr},
                {"unk_token", unk},      {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr}, {"fuse_unk", !byte_level},
                {"byte_fallback", !byte_level && spec.byte_fallback}, {"ignore_merges", spec.ignore_merges},
                {"vocab", std::move(vocab)}, {"merges", std::move(merges_json)}};

  json out = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added_tokens}};
  if (byte_level) {
    out["normalizer"] = spec.nfc ? json{{"type", "NFC"}} : json(nullptr);
    out["pre_tokenizer"] = pre_tokenizer_json(spec.pre_tokenizer);
    out["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  } else {
    const json replace_space = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpacePiece}};
    if (spec.add_dummy_prefix && spec.dummy_prefix != DummyPrefix::EverySection) {
      const char* scheme = spec.dummy_prefix == DummyPrefix::MetaspaceFirst ? "first" : "always";
      out["normalizer"] = nullptr;
      out["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", kSpacePiece}, {"prepend_scheme", scheme},
                              {"split", false}};
    } else if (spec.add_dummy_prefix) {
      out["normalizer"] = {{"type", "Sequence"},
                           {"normalizers", {{{"type", "Prepend"}, {"prepend", kSpacePiece}}, replace_space}}};
      out["pre_tokenizer"] = nullptr;
    } else {
      out["normalizer"] = replace_space;
      out["pre_tokenizer"] = nullptr;
    }
    json decoders = {{{"type", "Replace"}, {"pattern", {{"String", kSpacePiece}}}, {"content", " "}},
                     {{"type", "ByteFallback"}},
                     {{"type", "Fuse"}}};
    if (spec.add_dummy_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    out["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
  }
  if (spec.add_bos || spec.add_eos) {
    out["post_processor"] = template_processing(spec, pieces);
  } else if (byte_level) {
    out["post_processor"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
  } else {
    out["post_processor"] = nullptr;
  }
  out["model"] = std::move(model);
  return out;
}

json tokenizer_spec_to_hf_config(const TokenizerSpec& spec, const std::string& chat_template, int64_t model_max_length) {
  bpe::check_spec(spec, "tokenizer_config.json writer");
  auto token = [&](int32_t id) -> json {
    if (id < 0) return nullptr;
    for (const AddedToken& t : spec.added_tokens) {
      if (t.id == id) return t.content;
    }
    return spec.vocab[size_t(id)];
  };
  json added_decoder = json::object();
  for (const AddedToken& t : spec.added_tokens) {
    added_decoder[std::to_string(t.id)] = {{"content", t.content}, {"single_word", false}, {"lstrip", t.lstrip},
                                           {"rstrip", t.rstrip}, {"normalized", false}, {"special", t.special}};
  }
  json config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                 {"bos_token", token(spec.bos_id)},
                 {"eos_token", token(spec.eos_id)},
                 {"unk_token", token(spec.unk_id)},
                 {"pad_token", token(spec.pad_id)},
                 {"add_bos_token", spec.add_bos},
                 {"add_eos_token", spec.add_eos},
                 {"clean_up_tokenization_spaces", false},
                 {"added_tokens_decoder", added_decoder}};
  if (!chat_template.empty()) config["chat_template"] = chat_template;
  if (model_max_length > 0) config["model_max_length"] = model_max_length;
  return config;
}

}  // namespace aqlm
