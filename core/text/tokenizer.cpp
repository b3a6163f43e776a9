// The parts every tokenizer shares: the spec checks, splitting text on added tokens, BOS/EOS,
// token lookup, the factory and the stream decoder.
#include "core/text/tokenizer.h"

#include <algorithm>

#include "core/common/error.h"
#include "core/text/tokenizer_bpe.h"
#include "core/text/unicode.h"

namespace aqlm {

namespace bpe {

void check_spec(const TokenizerSpec& spec, const std::string& where) {
  const size_t n = spec.vocab.size();
  AQLM_CHECK(n > 0, where, ": the tokenizer has an empty vocabulary");
  AQLM_CHECK(spec.scores.empty() || spec.scores.size() == n, where, ": vocab size mismatch: ", n, " tokens but ",
             spec.scores.size(), " scores");
  const std::pair<const char*, int32_t> ids[] = {
      {"BOS", spec.bos_id}, {"EOS", spec.eos_id}, {"UNK", spec.unk_id}, {"PAD", spec.pad_id}};
  for (const auto& [name, id] : ids) {
    AQLM_CHECK(id >= -1 && id < int64_t(n), where, ": ", name, " token id ", id, " is outside the vocabulary (", n,
               " tokens)");
  }
  AQLM_CHECK(!spec.add_bos || spec.bos_id >= 0, where, ": the tokenizer adds BOS but has no BOS token");
  AQLM_CHECK(!spec.add_eos || spec.eos_id >= 0, where, ": the tokenizer adds EOS but has no EOS token");
  for (const AddedToken& t : spec.added_tokens) {
    AQLM_CHECK(t.id >= 0 && size_t(t.id) < n, where, ": added token '", t.content, "' has id ", t.id,
               ", outside the vocabulary (", n, " tokens)");
    AQLM_CHECK(!t.content.empty(), where, ": added token ", t.id, " has empty content");
  }
  if (spec.kind == TokenizerKind::ByteLevelBpe) {
    AQLM_CHECK(spec.pre_tokenizer != PreTokenizer::None, where,
               ": a byte-level BPE tokenizer needs a pre-tokenizer pattern");
  } else {
    AQLM_CHECK(spec.pre_tokenizer == PreTokenizer::None, where,
               ": SentencePiece and llama2.c tokenizers take no pre-tokenizer pattern");
    AQLM_CHECK(!spec.nfc, where, ": NFC normalization is supported for byte-level BPE only");
    AQLM_CHECK(!spec.merges.empty() || !spec.scores.empty(), where,
               ": a SentencePiece tokenizer needs either merges or scores");
  }
}

}  // namespace bpe

Tokenizer::Tokenizer(TokenizerSpec spec) : spec_(std::move(spec)) {
  bpe::check_spec(spec_, "tokenizer");
  piece_to_id_.reserve(spec_.vocab.size());
  for (size_t id = 0; id < spec_.vocab.size(); ++id) piece_to_id_.emplace(spec_.vocab[id], int32_t(id));
  special_.assign(spec_.vocab.size(), 0);
  for (const AddedToken& t : spec_.added_tokens) {
    special_[size_t(t.id)] = t.special ? 1 : 0;
    added_to_id_.emplace(t.content, t.id);
  }
}

Tokenizer::~Tokenizer() = default;

void Tokenizer::check_id(int32_t id) const {
  AQLM_CHECK(id >= 0 && size_t(id) < spec_.vocab.size(), "tokenizer: token id ", id,
             " is outside the vocabulary (", spec_.vocab.size(), " tokens)");
}

std::optional<int32_t> Tokenizer::token_id(std::string_view piece) const {
  const std::string key(piece);
  if (auto it = added_to_id_.find(key); it != added_to_id_.end()) return it->second;
  if (auto it = piece_to_id_.find(key); it != piece_to_id_.end()) return it->second;
  return std::nullopt;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  if (add_special && spec_.add_bos) out.push_back(spec_.bos_id);

  // Added tokens are cut out first; between them the model's own algorithm runs. As in the
  // `tokenizers` library, the earliest occurrence wins and, at one position, the longest token.
  struct Candidate {
    const AddedToken* token;
    size_t next;  // where it occurs next at or after the search position (npos: never again)
  };
  std::vector<Candidate> candidates;
  for (const AddedToken& t : spec_.added_tokens) {
    if (parse_special || !t.special) candidates.push_back({&t, text.find(t.content)});
  }
  size_t pos = 0;
  while (pos < text.size()) {
    const AddedToken* best = nullptr;
    size_t best_at = std::string_view::npos;
    for (Candidate& c : candidates) {
      if (c.next != std::string_view::npos && c.next < pos) c.next = text.find(c.token->content, pos);
      if (c.next == std::string_view::npos) continue;
      if (c.next < best_at || (c.next == best_at && c.token->content.size() > best->content.size())) {
        best = c.token;
        best_at = c.next;
      }
    }
    if (!best) break;
    size_t start = best_at, end = best_at + best->content.size();
    if (best->lstrip) {
      while (start > pos) {
        size_t prev = start - 1;
        while (prev > pos && (uint8_t(text[prev]) & 0xC0) == 0x80) --prev;  // back to a character's first byte
        const unicode::Decoded d = unicode::decode(text, prev);
        if (d.cp == unicode::kInvalid || unicode::char_class(d.cp) != unicode::CharClass::Space) break;
        start = prev;
      }
    }
    if (best->rstrip) {
      while (end < text.size()) {
        const unicode::Decoded d = unicode::decode(text, end);
        if (d.cp == unicode::kInvalid || unicode::char_class(d.cp) != unicode::CharClass::Space) break;
        end += size_t(d.length);
      }
    }
    if (start > pos) encode_section(text.substr(pos, start - pos), pos == 0, out);
    out.push_back(best->id);
    pos = end;
  }
  if (pos < text.size()) encode_section(text.substr(pos), pos == 0, out);

  if (add_special && spec_.add_eos) out.push_back(spec_.eos_id);
  return out;
}

std::unique_ptr<Tokenizer> make_tokenizer(TokenizerSpec spec) {
  if (spec.kind == TokenizerKind::ByteLevelBpe) return bpe::make_byte_level_tokenizer(std::move(spec));
  return bpe::make_sentencepiece_tokenizer(std::move(spec));
}

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special, bool continues_text)
    : tokenizer_(tokenizer), skip_special_(skip_special), first_(!continues_text) {}

std::string StreamDecoder::push(int32_t id) {
  if (skip_special_ && tokenizer_.is_special(id)) return {};
  std::string bytes = tokenizer_.token_bytes(id);
  // `first_`: no byte has been produced yet, so the dummy-prefix space decode() strips is still ahead.
  if (first_ && !bytes.empty()) {
    if (tokenizer_.strips_leading_space() && bytes[0] == ' ') bytes.erase(0, 1);
    first_ = false;
  }
  pending_ += bytes;
  std::string out;
  size_t pos = 0;
  while (pos < pending_.size()) {
    const int len = unicode::complete_sequence_length(pending_, pos);
    if (len == 0) break;  // an incomplete character at the end: wait for the next token
    if (len < 0) {  // can never become valid: one U+FFFD for the maximal ill-formed subpart
      out += "\xEF\xBF\xBD";
      pos += size_t(-len);
      continue;
    }
    out.append(pending_, pos, size_t(len));
    pos += size_t(len);
  }
  pending_.erase(0, pos);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = unicode::to_valid_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace aqlm
