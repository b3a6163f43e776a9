#include "core/quant/calibration.h"

#include <algorithm>
#include <numeric>

#include <nlohmann/json.hpp>

#include "core/common/error.h"
#include "core/common/paths.h"
#include "core/common/thread_pool.h"
#include "core/quant/quant_random.h"
#include "core/text/tokenizer.h"

namespace aqlm {
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kWindowStream = 31;  // QuantRandom purpose: window offset and choice

bool is_blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Documents of plain text: runs of non-blank lines, each kept byte for byte (inner newlines
// included, the newline after its last line not).
std::vector<std::string> split_plain_text(const std::string& text) {
  std::vector<std::string> docs;
  size_t doc_begin = std::string::npos, doc_end = 0, pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string_view line(text.data() + pos, nl - pos);
    if (is_blank(line)) {
      if (doc_begin != std::string::npos) docs.push_back(text.substr(doc_begin, doc_end - doc_begin));
      doc_begin = std::string::npos;
    } else {
      if (doc_begin == std::string::npos) doc_begin = pos;
      doc_end = nl > pos && text[nl - 1] == '\r' ? nl - 1 : nl;  // CRLF files end lines alike
    }
    pos = nl + 1;
  }
  if (doc_begin != std::string::npos) docs.push_back(text.substr(doc_begin, doc_end - doc_begin));
  return docs;
}

std::vector<std::string> split_json_lines(const std::string& text, const std::string& path) {
  std::vector<std::string> docs;
  size_t pos = 0;
  int64_t line_number = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    ++line_number;
    const std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    if (is_blank(line)) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      fail(path, ": line ", line_number, " is not JSON (a .jsonl calibration file has one object with a \"text\" field per line)");
    }
    AQLM_CHECK(j.is_object() && j.contains("text") && j["text"].is_string(), path, ": line ", line_number,
               " has no string field \"text\"");
    std::string doc = j["text"].get<std::string>();
    if (!doc.empty()) docs.push_back(std::move(doc));
  }
  return docs;
}

fs::path executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

}  // namespace

std::vector<std::string> read_calibration_documents(const std::string& path) {
  AQLM_CHECK(fs::is_regular_file(path), path, ": calibration text not found");
  const std::string text = read_text_file(path);
  return ends_with(path, ".jsonl") ? split_json_lines(text, path) : split_plain_text(text);
}

CalibrationSet make_calibration_set(const Tokenizer& tokenizer, const std::vector<std::string>& files,
                                    const CalibrationOptions& options) {
  AQLM_CHECK(!files.empty(), "calibration: no text file given");
  std::vector<std::string> documents;
  std::string what;
  for (const auto& f : files) {
    std::vector<std::string> docs = read_calibration_documents(f);
    documents.insert(documents.end(), std::make_move_iterator(docs.begin()), std::make_move_iterator(docs.end()));
    what += (what.empty() ? "" : ", ") + f;
  }
  return make_calibration_set(tokenizer, documents, options, what);
}

CalibrationSet make_calibration_set(const Tokenizer& tokenizer, const std::vector<std::string>& documents,
                                    const CalibrationOptions& o, const std::string& what) {
  AQLM_CHECK(o.seqlen >= 2, "calibration: windows of ", o.seqlen, " tokens; at least 2 are needed");
  AQLM_CHECK(o.train_windows >= 1, "calibration: ", o.train_windows, " calibration windows; at least 1 is needed");
  AQLM_CHECK(o.heldout_windows >= 0, "calibration: ", o.heldout_windows, " held-out windows");
  const int64_t windows = o.train_windows + o.heldout_windows;
  const int64_t needed = windows * o.seqlen;

  // Documents tokenize independently, so they are shared out over the threads.
  std::vector<std::vector<int32_t>> ids(documents.size());
  ThreadPool::global().parallel_for(documents.size(), [&](size_t begin, size_t end, int) {
    for (size_t d = begin; d < end; ++d) ids[d] = tokenizer.encode(documents[d], true);
  });
  CalibrationSet set;
  set.seqlen = o.seqlen;
  set.documents = int64_t(documents.size());
  for (const auto& v : ids) set.text_tokens += int64_t(v.size());
  const std::string need = str(o.train_windows, " calibration windows", o.heldout_windows > 0 ? " + " : "",
                               o.heldout_windows > 0 ? str(o.heldout_windows, " held-out windows") : std::string(),
                               " of ", o.seqlen, " tokens need ", needed, " tokens");
  AQLM_CHECK(set.text_tokens > 0, what, ": the calibration text is empty (", need, ")");
  AQLM_CHECK(set.text_tokens >= needed, what, ": the calibration text has only ", set.text_tokens, " tokens, but ",
             need, "; give more text or fewer or shorter windows");

  std::vector<int32_t> stream;
  stream.reserve(size_t(set.text_tokens));
  for (const auto& v : ids) stream.insert(stream.end(), v.begin(), v.end());
  ids.clear();

  const int64_t slots = set.text_tokens / o.seqlen;
  QuantRandom rng = QuantRandom::derive(o.seed, kWindowStream);
  const int64_t offset = int64_t(rng.below(uint64_t(set.text_tokens - slots * o.seqlen + 1)));
  const std::vector<int64_t> order = rng.permutation(slots);
  const auto copy_window = [&](int64_t slot, std::vector<int32_t>& dst) {
    const auto first = stream.begin() + offset + slot * o.seqlen;
    dst.insert(dst.end(), first, first + o.seqlen);
  };
  set.train_windows = o.train_windows;
  set.heldout_windows = o.heldout_windows;
  for (int64_t i = 0; i < o.train_windows; ++i) copy_window(order[size_t(i)], set.train);
  for (int64_t i = 0; i < o.heldout_windows; ++i) copy_window(order[size_t(o.train_windows + i)], set.heldout);
  return set;
}

fs::path default_calibration_text_path() {
  std::vector<fs::path> candidates;
  const fs::path exe = executable_dir();
  if (!exe.empty()) {
    candidates.push_back(exe / ".." / "share" / "aqlm-studio" / "data" / kDefaultCalibrationFile);  // installed
    candidates.push_back(exe / ".." / ".." / "resources" / "data" / kDefaultCalibrationFile);       // build/bin in the tree
    candidates.push_back(exe / ".." / ".." / ".." / "shared" / "data" / kDefaultCalibrationFile);  // the tree's ../shared
  }
  if (auto shared = shared_dir()) candidates.push_back(*shared / "data" / kDefaultCalibrationFile);
  std::string looked;
  for (const auto& c : candidates) {
    if (fs::is_regular_file(c)) return c.lexically_normal();
    looked += (looked.empty() ? "" : ", ") + c.lexically_normal().string();
  }
  fail("the default calibration text ", kDefaultCalibrationFile, " was not found (looked in ",
       looked.empty() ? std::string("no place") : looked, "); pass --calib FILE or run scripts/setup.sh");
}

}  // namespace aqlm
