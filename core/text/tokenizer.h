#pragma once
// Tokenizers: SentencePiece-style BPE with byte fallback (Llama-2, Mistral), byte-level BPE
// with GPT-2 / SmolLM2 / Llama-3 / Qwen2 pre-tokenizers, and the llama2.c tokenizer. All are built
// from one TokenizerSpec, which the loaders fill from tokenizer.json, GGUF metadata or a
// llama2.c .bin, and which the HF writer turns back into tokenizer.json.
// The reference is the Hugging Face `tokenizers` library: same ids, same decoded text
// (tests/text/tokenizer*_test.cpp, fixtures from scripts/reference/tokenizer_reference.py).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace aqlm {

enum class TokenizerKind {
  SentencePieceBpe,  // "▁" for spaces, merges by rank (tokenizer.json) or by score (GGUF llama), byte fallback
  ByteLevelBpe,      // GPT-2 byte-to-unicode alphabet, regex pre-tokenizer, merges by rank
  Llama2c,           // llama2.c: merges by score, dummy-prefix space, byte fallback at ids 3..258
};

// Byte-level BPE split patterns (tokenizer_pretokenize.h spells them out).
enum class PreTokenizer {
  None,
  Gpt2,        // ByteLevel(use_regex=true): GPT-2's pattern
  DigitsGpt2,  // Digits(individual_digits=true) then GPT-2's pattern: SmolLM2, StarCoder (GGUF pre "smollm")
  Llama3,      // Split(Llama-3 pattern) then ByteLevel(use_regex=false) (GGUF pre "llama-bpe")
  Qwen2,       // Split(Qwen2 pattern: like Llama-3 but single digits) then ByteLevel (GGUF pre "qwen2")
};

// Where SentencePiece's "▁" prefix goes. A "section" is text between two added tokens.
enum class DummyPrefix {
  EverySection,     // normalizer Prepend("▁"): legacy Llama / Mistral tokenizer.json, GGUF, llama2.c
  MetaspaceAlways,  // Metaspace prepend_scheme "always": every section that does not start with a space
  MetaspaceFirst,   // Metaspace prepend_scheme "first": only a section at the start of the input, ditto
};

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = true;  // control token: parsed in text only when parse_special, skipped by decode(skip_special)
  // Tokens that are not special (GGUF "user defined") are always parsed in text and always decoded.
  bool lstrip = false, rstrip = false;  // the match swallows the white space before / after it
};

struct TokenizerSpec {
  TokenizerKind kind = TokenizerKind::SentencePieceBpe;
  PreTokenizer pre_tokenizer = PreTokenizer::None;
  // id -> piece as stored ("▁" for spaces in SentencePiece, " " in llama2.c, the byte-level
  // alphabet for byte-level BPE). Covers every id, added tokens included (their content).
  std::vector<std::string> vocab;
  std::vector<float> scores;  // merge scores (SentencePiece / llama2.c); may be empty
  // By rank. When empty, SentencePiece / llama2.c merge the pair whose joined piece has the best score.
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<AddedToken> added_tokens;
  bool byte_fallback = true;     // SentencePiece: an unknown character becomes its <0xXX> byte tokens
  bool add_dummy_prefix = true;  // SentencePiece / llama2.c: prepend "▁" to each text section; decode strips it
  DummyPrefix dummy_prefix = DummyPrefix::EverySection;  // where, when add_dummy_prefix
  bool ignore_merges = false;  // byte-level (Llama-3): a word that is a vocab piece as a whole is not merged
  bool nfc = false;            // byte-level (Qwen2's tokenizer.json): NFC-normalize text before splitting
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  bool add_bos = false, add_eos = false;  // what encode() does by default
};

// Immutable after construction; encode and decode may be called from several threads.
class Tokenizer {
 public:
  virtual ~Tokenizer();

  // add_special: BOS/EOS as the tokenizer's config says. parse_special: "<|im_start|>" in the
  // text becomes its id (chat prompts) rather than being split into ordinary pieces.
  std::vector<int32_t> encode(std::string_view text, bool add_special = true, bool parse_special = false) const;
  // The bytes token `id` stands for ("▁the" -> " the", "<0x0A>" -> "\n", byte-level -> raw bytes,
  // an added token -> its content). May be an incomplete UTF-8 sequence; StreamDecoder deals
  // with that. Throws Error for an id outside the vocabulary.
  virtual std::string token_bytes(int32_t id) const = 0;
  // Joins and cleans up as the Hugging Face decoders do: strips the SentencePiece dummy-prefix
  // space at the start, turns invalid UTF-8 into U+FFFD. Always returns valid UTF-8.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special = true) const = 0;

  const TokenizerSpec& spec() const { return spec_; }
  int vocab_size() const { return int(spec_.vocab.size()); }
  int32_t bos_id() const { return spec_.bos_id; }
  int32_t eos_id() const { return spec_.eos_id; }
  bool is_special(int32_t id) const { return id >= 0 && size_t(id) < special_.size() && special_[size_t(id)]; }
  std::optional<int32_t> token_id(std::string_view piece) const;  // added token content or vocab piece
  // Whether decode drops one leading space (the dummy prefix that encode added).
  bool strips_leading_space() const { return spec_.kind != TokenizerKind::ByteLevelBpe && spec_.add_dummy_prefix; }

 protected:
  explicit Tokenizer(TokenizerSpec spec);  // checks the spec; throws Error naming what is wrong
  // Encodes one stretch of ordinary text (no added tokens in it). `at_input_start`: the
  // stretch begins at byte 0 of the text given to encode().
  virtual void encode_section(std::string_view text, bool at_input_start, std::vector<int32_t>& out) const = 0;
  void check_id(int32_t id) const;

  TokenizerSpec spec_;
  std::unordered_map<std::string, int32_t> piece_to_id_;  // vocab pieces (first id wins)

 private:
  std::vector<uint8_t> special_;  // id -> 1 for special added tokens
  std::unordered_map<std::string, int32_t> added_to_id_;
};

std::unique_ptr<Tokenizer> make_tokenizer(TokenizerSpec spec);

// Loaders. `tokenizer_config` may be null (no tokenizer_config.json).
TokenizerSpec tokenizer_spec_from_hf_json(const nlohmann::json& tokenizer_json, const nlohmann::json* tokenizer_config,
                                          const std::string& where);
// `expected_vocab`: the model's vocabulary size (the .bin does not store it); 0 reads to the end.
TokenizerSpec tokenizer_spec_from_llama2c(const std::string& path, int expected_vocab);
// GGUF: the reader passes the tokenizer.ggml.* keys as JSON (arrays as arrays).
TokenizerSpec tokenizer_spec_from_gguf(const nlohmann::json& ggml_tokenizer_keys, const std::string& where);

// Writers for the HF folder: tokenizer.json and the tokenizer_config.json fields that matter.
nlohmann::json tokenizer_spec_to_hf_json(const TokenizerSpec& spec);
// `model_max_length` 0 leaves the field out.
nlohmann::json tokenizer_spec_to_hf_config(const TokenizerSpec& spec, const std::string& chat_template,
                                           int64_t model_max_length = 0);

// Streams tokens to text without ever splitting a UTF-8 character: bytes of an incomplete
// character are held back until the token that completes them arrives.
class StreamDecoder {
 public:
  // continues_text: the tokens continue text already shown (a prompt), so the SentencePiece
  // leading space of the first token is a real space and is kept.
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = true, bool continues_text = false);
  std::string push(int32_t id);  // the text that became complete with this token
  std::string flush();           // whatever is left (invalid bytes become U+FFFD)

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  bool first_ = true;
  std::string pending_;
};

}  // namespace aqlm
