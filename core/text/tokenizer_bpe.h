#pragma once
// Internals shared by the tokenizer implementations (not part of the interface).
#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <algorithm>
#include <string>
#include <vector>

#include "core/text/tokenizer.h"

namespace aqlm::bpe {

// What merging a pair of adjacent symbols gives: `priority` (lower merges first: the merge rank,
// or minus the score of the joined piece) and the id of the joined piece.
struct PairMerge {
  double priority = std::numeric_limits<double>::infinity();  // infinity: this pair never merges
  int32_t id = -1;
};

// Merges the symbols of one word, always the best pair first and the leftmost among equals, until
// no pair merges. This is the order of both the `tokenizers` BPE (by rank) and SentencePiece /
// llama.cpp / llama2.c (by score). A binary heap with lazy deletion keeps long words
// (SentencePiece text has no pre-tokenizer, so a whole paragraph is one word) at O(n log n).
template <class PairFn>
void merge_word(std::vector<int32_t>& ids, const PairFn& pair_merge) {
  const int n = int(ids.size());
  if (n < 2) return;
  struct Candidate {
    double priority;
    int left_pos;
    int32_t left, right, merged;
    bool operator<(const Candidate& o) const {  // "less urgent than": the heap's top is the most urgent
      return priority != o.priority ? priority > o.priority : left_pos > o.left_pos;
    }
  };
  // Scratch space reused across words: most words are short, and allocating for each costs more
  // than merging them.
  thread_local std::vector<int> prev, next;
  thread_local std::vector<Candidate> heap;
  prev.resize(size_t(n));
  next.resize(size_t(n));
  for (int i = 0; i < n; ++i) {
    prev[size_t(i)] = i - 1;
    next[size_t(i)] = i + 1 < n ? i + 1 : -1;
  }
  heap.clear();
  auto offer = [&](int left_pos) {
    const int right_pos = next[size_t(left_pos)];
    if (right_pos < 0) return;
    const int32_t l = ids[size_t(left_pos)], r = ids[size_t(right_pos)];
    const PairMerge m = pair_merge(l, r);
    if (m.id >= 0) {
      heap.push_back({m.priority, left_pos, l, r, m.id});
      std::push_heap(heap.begin(), heap.end());
    }
  };
  for (int i = 0; i + 1 < n; ++i) offer(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate c = heap.back();
    heap.pop_back();
    const int right_pos = next[size_t(c.left_pos)];
    // Stale entries: a side was merged away or changed since this pair was offered.
    if (ids[size_t(c.left_pos)] != c.left || right_pos < 0 || ids[size_t(right_pos)] != c.right) continue;
    ids[size_t(c.left_pos)] = c.merged;
    ids[size_t(right_pos)] = -1;
    next[size_t(c.left_pos)] = next[size_t(right_pos)];
    if (next[size_t(right_pos)] >= 0) prev[size_t(next[size_t(right_pos)])] = c.left_pos;
    if (prev[size_t(c.left_pos)] >= 0) offer(prev[size_t(c.left_pos)]);
    offer(c.left_pos);
  }
  size_t out = 0;
  for (int i = 0; i >= 0; i = next[size_t(i)]) ids[out++] = ids[size_t(i)];
  ids.resize(out);
}

// GPT-2's reversible map from bytes to printable characters: byte b is the piece character
// byte_level_char(b); spaces become "Ġ", newlines "Ċ".
const std::array<std::string, 256>& byte_level_chars();
// The byte a byte-level character stands for, or -1 for a character outside the alphabet.
int byte_level_byte(char32_t cp);

// Parses "<0xAB>" (the SentencePiece byte tokens); -1 if `piece` is not one.
int parse_byte_piece(std::string_view piece);

// Checks a spec's inner consistency (sizes, ids in range); errors start with `where`.
void check_spec(const TokenizerSpec& spec, const std::string& where);

std::unique_ptr<Tokenizer> make_byte_level_tokenizer(TokenizerSpec spec);
std::unique_ptr<Tokenizer> make_sentencepiece_tokenizer(TokenizerSpec spec);  // also llama2.c

}  // namespace aqlm::bpe
