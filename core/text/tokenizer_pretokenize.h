#pragma once
// The pre-tokenizer patterns of byte-level BPE tokenizers, written out as code: they need
// Unicode classes (\p{L}, \p{N}, \s) that std::regex lacks, and a hand-written matcher for each
// fixed pattern is both self-contained (no PCRE2 on the GPU machine) and fast. Each splitter
// gives exactly the pieces of the `tokenizers` library's Split(Regex(pattern), "isolated"),
// which tokenizer_reference.py checks on the committed string set.
#include <string_view>
#include <vector>

#include "core/text/tokenizer.h"

namespace aqlm {

// The patterns, as the `tokenizers` library and tokenizer.json files spell them.
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Appends the pieces of `text` to `pieces` (views into `text`, in order, covering all of it).
// PreTokenizer::None gives the whole text as one piece.
void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>& pieces);

}  // namespace aqlm
