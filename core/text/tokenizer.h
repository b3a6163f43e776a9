#pragma once
// Tokenizers: SentencePiece-style BPE with byte fallback (Llama-2, Mistral), byte-level BPE
// with GPT-2 / Llama-3 / Qwen2 pre-tokenizers, and the llama2.c tokenizer. All are built
// from one TokenizerSpec, which the loaders fill from tokenizer.json, GGUF metadata or a
// llama2.c .bin, and which the HF writer turns back into tokenizer.json.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace aqlm {

enum class TokenizerKind {
  SentencePieceBpe,  // "▁" for spaces, merges by rank (tokenizer.json) or by score (GGUF llama), byte fallback
  ByteLevelBpe,      // GPT-2 byte-to-unicode alphabet, regex pre-tokenizer, merges by rank
  Llama2c,           // llama2.c: merges by score, dummy-prefix space, byte fallback at ids 3..258
};

enum class PreTokenizer { None, Gpt2, Llama3, Qwen2 };  // byte-level BPE split patterns

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = true;  // control token: parsed in text only when parse_special, skipped by decode(skip_special)
};

struct TokenizerSpec {
  TokenizerKind kind = TokenizerKind::SentencePieceBpe;
  PreTokenizer pre_tokenizer = PreTokenizer::None;
  std::vector<std::string> vocab;  // id -> piece as stored (with "▁" or the byte-level alphabet)
  std::vector<float> scores;       // merge scores (SentencePiece / llama2.c); may be empty
  std::vector<std::pair<std::string, std::string>> merges;  // by rank; may be empty for score-based BPE
  std::vector<AddedToken> added_tokens;
  bool byte_fallback = true;
  bool add_dummy_prefix = true;  // SentencePiece: prepend "▁" to the text
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  bool add_bos = false, add_eos = false;  // what encode() does by default
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // add_special: BOS/EOS as the tokenizer's config says. parse_special: "<|im_start|>" in the
  // text becomes its id (chat prompts) rather than being split into ordinary pieces.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special = true,
                                      bool parse_special = false) const = 0;
  // The bytes token `id` stands for ("▁the" -> " the", "<0x0A>" -> "\n", byte-level -> raw bytes).
  // May be an incomplete UTF-8 sequence; StreamDecoder deals with that.
  virtual std::string token_bytes(int32_t id) const = 0;
  // Joins and cleans up (e.g. strips the SentencePiece dummy-prefix space at the start).
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special = true) const = 0;

  virtual const TokenizerSpec& spec() const = 0;
  int vocab_size() const { return int(spec().vocab.size()); }
  int32_t bos_id() const { return spec().bos_id; }
  int32_t eos_id() const { return spec().eos_id; }
  bool is_special(int32_t id) const;
  std::optional<int32_t> token_id(std::string_view piece) const;  // vocab or added token
};

std::unique_ptr<Tokenizer> make_tokenizer(TokenizerSpec spec);

// Loaders. `tokenizer_config` may be null (no tokenizer_config.json).
TokenizerSpec tokenizer_spec_from_hf_json(const nlohmann::json& tokenizer_json, const nlohmann::json* tokenizer_config,
                                          const std::string& where);
TokenizerSpec tokenizer_spec_from_llama2c(const std::string& path, int expected_vocab);
// GGUF: the reader passes the tokenizer.ggml.* keys as JSON (arrays as arrays).
TokenizerSpec tokenizer_spec_from_gguf(const nlohmann::json& ggml_tokenizer_keys, const std::string& where);

// Writers for the HF folder: tokenizer.json and the tokenizer_config.json fields that matter.
nlohmann::json tokenizer_spec_to_hf_json(const TokenizerSpec& spec);
nlohmann::json tokenizer_spec_to_hf_config(const TokenizerSpec& spec, const std::string& chat_template);

// Streams tokens to text without ever splitting a UTF-8 character: bytes of an incomplete
// character are held back until the token that completes them arrives.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = true);
  std::string push(int32_t id);  // the text that became complete with this token
  std::string flush();           // whatever is left (invalid bytes become U+FFFD)

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  bool first_ = true;
  std::string pending_;
};

}  // namespace aqlm
