#pragma once
// Calibration data: text files -> token windows of `seqlen` tokens, split into calibration
// (train) windows, from which the pipeline takes XTX and fine-tunes, and held-out windows,
// on which block fine-tuning stops early.
//
// A file is plain text, whose documents are separated by blank lines, or JSON lines (.jsonl)
// with a "text" field per line. Each document is tokenized on its own as the model would see
// a fresh text (the tokenizer's BOS when it adds one), and the token streams are joined in file
// order. That stream is cut into non-overlapping windows at a random offset, and a seeded
// random choice of those windows gives the train windows, then the held-out ones: the two
// sets never share a token.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace aqlm {

class Tokenizer;

struct CalibrationOptions {
  int64_t train_windows = 128;
  int64_t heldout_windows = 0;
  int64_t seqlen = 512;
  uint64_t seed = 0;
};

struct CalibrationSet {
  int64_t seqlen = 0;
  int64_t train_windows = 0, heldout_windows = 0;
  std::vector<int32_t> train;    // [train_windows, seqlen]
  std::vector<int32_t> heldout;  // [heldout_windows, seqlen]
  int64_t documents = 0;         // documents read
  int64_t text_tokens = 0;       // tokens of all of them

  const int32_t* train_window(int64_t i) const { return train.data() + i * seqlen; }
  const int32_t* heldout_window(int64_t i) const { return heldout.data() + i * seqlen; }
};

// The documents of one file (see the file comment). Errors name the file (missing, unreadable,
// a JSONL line that is not an object with a string "text", with its line number).
std::vector<std::string> read_calibration_documents(const std::string& path);

// Tokenizes the documents of `files` (on the global thread pool) and picks the windows.
// Errors: no files; a file without any text; fewer tokens than the windows need (the message
// says how many tokens were needed and how many the text has); seqlen < 2 or no train window.
CalibrationSet make_calibration_set(const Tokenizer& tokenizer, const std::vector<std::string>& files,
                                    const CalibrationOptions& options);
// The same from documents already in memory; `what` names them in messages.
CalibrationSet make_calibration_set(const Tokenizer& tokenizer, const std::vector<std::string>& documents,
                                    const CalibrationOptions& options, const std::string& what);

// The default calibration text, c4-validation-2k.txt (2,000 C4 validation documents), looked
// up where an installed app keeps it (<prefix>/share/aqlm-studio/data, beside the executable's
// ../share), where the source tree keeps its copy (resources/data, found from the executable
// of a build folder inside the tree), in the shared data folder beside the tree (a build's
// ../../../shared/data) and in shared_dir()/data.
// Error listing the places looked at when it is in none of them.
std::filesystem::path default_calibration_text_path();
inline constexpr const char* kDefaultCalibrationFile = "c4-validation-2k.txt";

}  // namespace aqlm
