// The two BPE tokenizers: byte-level (GPT-2 alphabet, regex pre-tokenizer, merges by rank) and
// SentencePiece-style ("▁" for spaces, byte fallback, merges by rank or by score), the latter
// also serving llama2.c's format, whose pieces hold real spaces.
#include "core/text/tokenizer_bpe.h"

#include <algorithm>
#include <unordered_map>

#include "core/common/error.h"
#include "core/text/tokenizer_pretokenize.h"
#include "core/text/unicode.h"

namespace aqlm::bpe {

const std::array<std::string, 256>& byte_level_chars() {
  static const std::array<std::string, 256> chars = [] {
    std::array<std::string, 256> c;
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      unicode::append_utf8(c[size_t(b)], printable ? char32_t(b) : char32_t(256 + extra++));
    }
    return c;
  }();
  return chars;
}

int byte_level_byte(char32_t cp) {
  static const std::unordered_map<char32_t, int> bytes = [] {
    std::unordered_map<char32_t, int> m;
    for (int b = 0; b < 256; ++b) m[unicode::decode(byte_level_chars()[size_t(b)], 0).cp] = b;
    return m;
  }();
  const auto it = bytes.find(cp);
  return it == bytes.end() ? -1 : it->second;
}

int parse_byte_piece(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  int value = 0;
  for (char ch : piece.substr(3, 2)) {
    value *= 16;
    if (ch >= '0' && ch <= '9') value += ch - '0';
    else if (ch >= 'A' && ch <= 'F') value += ch - 'A' + 10;
    else if (ch >= 'a' && ch <= 'f') value += ch - 'a' + 10;
    else return -1;
  }
  return value;
}

namespace {

uint64_t pair_key(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }

// (left, right) -> (rank, joined id), from merges given by rank.
std::unordered_map<uint64_t, PairMerge> rank_merges(const TokenizerSpec& spec,
                                                    const std::unordered_map<std::string, int32_t>& piece_to_id) {
  std::unordered_map<uint64_t, PairMerge> merges;
  merges.reserve(spec.merges.size());
  auto id_of = [&](const std::string& piece, size_t rank) {
    const auto it = piece_to_id.find(piece);
    AQLM_CHECK(it != piece_to_id.end(), "tokenizer: merge ", rank, " ('", spec.merges[rank].first, "' + '",
               spec.merges[rank].second, "') uses '", piece, "', which is not in the vocabulary");
    return it->second;
  };
  for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
    const auto& [left, right] = spec.merges[rank];
    const int32_t l = id_of(left, rank), r = id_of(right, rank), joined = id_of(left + right, rank);
    // A repeated merge keeps its last rank, as in the `tokenizers` library.
    merges.insert_or_assign(pair_key(l, r), PairMerge{double(rank), joined});
  }
  return merges;
}

// A character (SentencePiece) or byte (byte-level) the vocabulary lacks. As the `tokenizers` BPE:
// without an unknown token it is dropped; runs of unknowns fuse where the model says fuse_unk
// (SentencePiece models do, byte-level ones do not).
void push_unknown(const TokenizerSpec& spec, std::vector<int32_t>& out, bool fuse) {
  if (spec.unk_id < 0) return;
  if (fuse && !out.empty() && out.back() == spec.unk_id) return;
  out.push_back(spec.unk_id);
}

class ByteLevelTokenizer final : public Tokenizer {
 public:
  explicit ByteLevelTokenizer(TokenizerSpec spec) : Tokenizer(std::move(spec)) {
    merges_ = rank_merges(spec_, piece_to_id_);
    for (int b = 0; b < 256; ++b) {
      const auto it = piece_to_id_.find(byte_level_chars()[size_t(b)]);
      byte_ids_[size_t(b)] = it == piece_to_id_.end() ? -1 : it->second;
    }
    bytes_.resize(spec_.vocab.size());
    for (size_t id = 0; id < spec_.vocab.size(); ++id) bytes_[id] = piece_bytes(spec_.vocab[id]);
    for (const AddedToken& t : spec_.added_tokens) bytes_[size_t(t.id)] = t.content;
  }

  std::string token_bytes(int32_t id) const override {
    check_id(id);
    return bytes_[size_t(id)];
  }

  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override {
    std::string raw;
    for (int32_t id : ids) {
      check_id(id);
      if (!(skip_special && is_special(id))) raw += bytes_[size_t(id)];
    }
    return unicode::to_valid_utf8(raw);
  }

 private:
  // A piece's characters map back to bytes; a piece with a character outside the alphabet is
  // taken as its own UTF-8, as the ByteLevel decoder does.
  static std::string piece_bytes(const std::string& piece) {
    std::string out;
    for (size_t pos = 0; pos < piece.size();) {
      const unicode::Decoded d = unicode::decode(piece, pos);
      const int b = d.cp == unicode::kInvalid ? -1 : byte_level_byte(d.cp);
      if (b < 0) return piece;
      out += char(b);
      pos += size_t(d.length);
    }
    return out;
  }

  void encode_section(std::string_view text, bool, std::vector<int32_t>& out) const override {
    std::string normalized;
    if (spec_.nfc) {
      normalized = unicode::to_nfc(text);
      text = normalized;
    }
    thread_local std::vector<std::string_view> words;
    words.clear();
    pre_tokenize(spec_.pre_tokenizer, text, words);
    std::vector<int32_t> ids;
    for (std::string_view word : words) {
      if (spec_.ignore_merges) {
        std::string mapped;
        for (char ch : word) mapped += byte_level_chars()[uint8_t(ch)];
        if (auto it = piece_to_id_.find(mapped); it != piece_to_id_.end()) {
          out.push_back(it->second);
          continue;
        }
      }
      ids.clear();
      for (char ch : word) {
        const int32_t id = byte_ids_[uint8_t(ch)];
        if (id >= 0) ids.push_back(id);
        else push_unknown(spec_, ids, false);
      }
      merge_word(ids, [this](int32_t a, int32_t b) {
        const auto it = merges_.find(pair_key(a, b));
        return it == merges_.end() ? PairMerge{} : it->second;
      });
      out.insert(out.end(), ids.begin(), ids.end());
    }
  }

  std::unordered_map<uint64_t, PairMerge> merges_;
  std::array<int32_t, 256> byte_ids_{};
  std::vector<std::string> bytes_;
};

class SentencePieceTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(TokenizerSpec spec)
      : Tokenizer(std::move(spec)), space_(spec_.kind == TokenizerKind::Llama2c ? " " : "\xE2\x96\x81") {
    if (!spec_.merges.empty()) merges_ = rank_merges(spec_, piece_to_id_);
    byte_ids_.fill(-1);
    byte_of_id_.assign(spec_.vocab.size(), -1);
    std::vector<uint8_t> added(spec_.vocab.size(), 0);
    for (const AddedToken& t : spec_.added_tokens) added[size_t(t.id)] = 1;
    bytes_.resize(spec_.vocab.size());
    for (size_t id = 0; id < spec_.vocab.size(); ++id) {
      const std::string& piece = spec_.vocab[id];
      const int b = added[id] ? -1 : parse_byte_piece(piece);
      if (b >= 0) {
        byte_of_id_[id] = int16_t(b);
        if (byte_ids_[size_t(b)] < 0) byte_ids_[size_t(b)] = int32_t(id);
        bytes_[id] = std::string(1, char(b));
      } else {
        bytes_[id] = replace_all(piece, space_, " ");
      }
    }
    for (const AddedToken& t : spec_.added_tokens) bytes_[size_t(t.id)] = t.content;
    // SentencePiece has no pre-tokenizer: a whole paragraph is one word. When no piece holds a
    // space after a non-space (true of Llama / Mistral vocabularies, trained with
    // split_by_whitespace), no merge can join across "x|▁", and the text may be cut there.
    for (size_t id = 0; id < spec_.vocab.size() && words_are_independent_; ++id) {
      const std::string& piece = spec_.vocab[id];
      if (added[id]) continue;
      size_t only_spaces = 0;
      while (piece.compare(only_spaces, space_.size(), space_) == 0) only_spaces += space_.size();
      if (only_spaces < piece.size() && piece.find(space_, std::max<size_t>(only_spaces, 1)) != std::string::npos)
        words_are_independent_ = false;
    }
  }

  std::string token_bytes(int32_t id) const override {
    check_id(id);
    return bytes_[size_t(id)];
  }

  // As the `tokenizers` decoders Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0): a run
  // of byte tokens that is not valid UTF-8 becomes one U+FFFD per byte.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override {
    std::string out, byte_run;
    auto flush_bytes = [&] {
      if (unicode::is_valid_utf8(byte_run)) {
        out += byte_run;
      } else {
        for (size_t i = 0; i < byte_run.size(); ++i) out += "\xEF\xBF\xBD";
      }
      byte_run.clear();
    };
    for (int32_t id : ids) {
      check_id(id);
      if (skip_special && is_special(id)) continue;
      if (byte_of_id_[size_t(id)] >= 0) {
        byte_run += char(byte_of_id_[size_t(id)]);
        continue;
      }
      flush_bytes();
      out += bytes_[size_t(id)];
    }
    flush_bytes();
    if (strips_leading_space() && !out.empty() && out[0] == ' ') out.erase(0, 1);
    return unicode::to_valid_utf8(out);  // llama2.c pieces are raw bytes and may be ill-formed
  }

 private:
  static std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
    std::string out;
    for (size_t pos = 0;;) {
      const size_t hit = text.find(from, pos);
      if (hit == std::string_view::npos) return out.append(text.substr(pos));
      out.append(text.substr(pos, hit - pos)).append(to);
      pos = hit + from.size();
    }
  }

  void encode_section(std::string_view text, bool at_input_start, std::vector<int32_t>& out) const override {
    std::string normalized;
    if (spec_.add_dummy_prefix) {
      // Metaspace adds no prefix to text that starts with a space already; "first" only at the start.
      const bool metaspace = spec_.dummy_prefix != DummyPrefix::EverySection;
      if (spec_.dummy_prefix == DummyPrefix::EverySection ||
          (!(metaspace && text[0] == ' ') && (spec_.dummy_prefix == DummyPrefix::MetaspaceAlways || at_input_start)))
        normalized = space_;
    }
    normalized += replace_all(text, " ", space_);
    if (!words_are_independent_) {
      encode_chunk(normalized, out);
      return;
    }
    // Cut before each space that follows a non-space: no merge can cross such a cut (see the
    // constructor), so each word merges on its own with the same result, in O(word) memory.
    const std::string_view all(normalized);
    size_t start = 0;
    for (size_t pos = all.find(space_, 1); pos != std::string_view::npos; pos = all.find(space_, pos + space_.size())) {
      if (all.substr(pos - space_.size(), space_.size()) == space_) continue;  // inside a run of spaces
      encode_chunk(all.substr(start, pos - start), out);
      start = pos;
    }
    encode_chunk(all.substr(start), out);
  }

  void encode_chunk(std::string_view normalized, std::vector<int32_t>& out) const {
    // Each character is a piece of the vocabulary, or its UTF-8 bytes as <0xXX> tokens, or unknown.
    thread_local std::vector<int32_t> ids;
    ids.clear();
    std::string ch;
    for (size_t pos = 0; pos < normalized.size();) {
      const int len = unicode::decode(normalized, pos).length;
      ch.assign(normalized.substr(pos, size_t(len)));
      pos += size_t(len);
      if (auto it = piece_to_id_.find(ch); it != piece_to_id_.end()) {
        ids.push_back(it->second);
        continue;
      }
      bool all_bytes = spec_.byte_fallback;
      for (char b : ch) all_bytes = all_bytes && byte_ids_[uint8_t(b)] >= 0;
      if (all_bytes) {
        for (char b : ch) ids.push_back(byte_ids_[uint8_t(b)]);
      } else {
        push_unknown(spec_, ids, true);
      }
    }

    if (!merges_.empty()) {
      merge_word(ids, [this](int32_t a, int32_t b) {
        const auto it = merges_.find(pair_key(a, b));
        return it == merges_.end() ? PairMerge{} : it->second;
      });
    } else {
      // By score: the joined piece must be in the vocabulary; byte tokens and UNK never merge.
      std::string joined;
      merge_word(ids, [&](int32_t a, int32_t b) {
        if (byte_of_id_[size_t(a)] >= 0 || byte_of_id_[size_t(b)] >= 0 || a == spec_.unk_id || b == spec_.unk_id)
          return PairMerge{};
        joined.assign(spec_.vocab[size_t(a)]).append(spec_.vocab[size_t(b)]);
        const auto it = piece_to_id_.find(joined);
        if (it == piece_to_id_.end()) return PairMerge{};
        return PairMerge{-double(spec_.scores[size_t(it->second)]), it->second};
      });
    }
    out.insert(out.end(), ids.begin(), ids.end());
  }

  std::string space_;  // how a space is written in the pieces
  bool words_are_independent_ = true;
  std::unordered_map<uint64_t, PairMerge> merges_;
  std::array<int32_t, 256> byte_ids_{};
  std::vector<int16_t> byte_of_id_;  // id -> the byte of a <0xXX> token, else -1
  std::vector<std::string> bytes_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_level_tokenizer(TokenizerSpec spec) {
  return std::make_unique<ByteLevelTokenizer>(std::move(spec));
}

std::unique_ptr<Tokenizer> make_sentencepiece_tokenizer(TokenizerSpec spec) {
  return std::make_unique<SentencePieceTokenizer>(std::move(spec));
}

}  // namespace aqlm::bpe
