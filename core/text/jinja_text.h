#pragma once
// Python str semantics on UTF-8 text for the chat-template interpreter: templates index,
// slice, strip, split and case-map strings by code point, exactly as Python does.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aqlm::jinja::text {

// Code points of UTF-8 text; invalid bytes decode as U+FFFD so indexing never fails.
std::vector<char32_t> decode(std::string_view utf8);
std::string encode(char32_t code_point);
std::string encode(const std::vector<char32_t>& code_points);
size_t length(std::string_view utf8);  // in code points

bool is_space(char32_t c);      // Python str.isspace
bool is_line_break(char32_t c); // Python str.splitlines boundaries
bool is_printable(char32_t c);  // Python str.isprintable (approximate outside the BMP's common blocks)
char32_t to_upper(char32_t c);  // simple Unicode case mapping (the C library's, via C.UTF-8)
char32_t to_lower(char32_t c);
bool is_cased(char32_t c);      // has an upper- or lower-case form
bool is_word(char32_t c);       // a letter or digit (Python's \w outside ASCII, for identifiers)

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string capitalize(std::string_view s);   // str.capitalize
std::string title(std::string_view s);        // str.title
std::string jinja_title(std::string_view s);  // Jinja's |title filter (words split on -, space, brackets)
bool is_lower(std::string_view s);            // str.islower
bool is_upper(std::string_view s);            // str.isupper

// str.strip / lstrip / rstrip; `chars` absent means whitespace.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split / str.rsplit; `separator` absent means runs of whitespace; max_split < 0 means no limit.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& separator, int64_t max_split,
                               bool from_right);
std::vector<std::string> split_lines(std::string_view s);  // str.splitlines()
// str.replace; count < 0 means all. An empty `old` inserts `replacement` between code points.
std::string replace(std::string_view s, std::string_view old, std::string_view replacement, int64_t count);
int64_t count(std::string_view s, std::string_view needle);  // non-overlapping, str.count
int64_t find(std::string_view s, std::string_view needle);   // code point index or -1

// Python's repr of a str: quotes chosen as Python does, escapes for non-printables.
std::string repr(std::string_view s);

// Python's int(str, base) and float(str); nullopt when Python would raise ValueError.
std::optional<int64_t> parse_int(std::string_view s, int base);
std::optional<double> parse_float(std::string_view s);

}  // namespace aqlm::jinja::text
