// Calibration text -> documents -> token windows: what the windows are made of (slices of the
// joined token stream, non-overlapping, train and held-out disjoint), seeding, and the
// messages for empty, short and malformed text.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "core/common/error.h"
#include "core/quant/calibration.h"
#include "core/text/tokenizer.h"
#include "tests/support/test_paths.h"

namespace aqlm {
namespace {
namespace fs = std::filesystem;

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(CalibrationDocuments, PlainTextSplitsAtBlankLines) {
  const fs::path dir = test::temp_dir("calib-docs");
  write_file(dir / "a.txt", "\n\nfirst line\nsecond line\n\n  \t\n\r\nthird\r\nfourth\r\n\n\nlast");
  EXPECT_EQ(read_calibration_documents((dir / "a.txt").string()),
            (std::vector<std::string>{"first line\nsecond line", "third\r\nfourth", "last"}));
  write_file(dir / "empty.txt", "\n \n\t\n");
  EXPECT_TRUE(read_calibration_documents((dir / "empty.txt").string()).empty());
  fs::remove_all(dir);
}

TEST(CalibrationDocuments, JsonLinesTakeTheTextField) {
  const fs::path dir = test::temp_dir("calib-jsonl");
  write_file(dir / "d.jsonl", "{\"text\": \"one\\n\\ntwo\", \"id\": 1}\n\n{\"text\": \"\"}\n{\"text\": \"three\"}");
  EXPECT_EQ(read_calibration_documents((dir / "d.jsonl").string()), (std::vector<std::string>{"one\n\ntwo", "three"}));

  write_file(dir / "bad.jsonl", "{\"text\": \"ok\"}\n{\"content\": \"x\"}\n");
  EXPECT_EQ(error_of([&] { read_calibration_documents((dir / "bad.jsonl").string()); }),
            (dir / "bad.jsonl").string() + ": line 2 has no string field \"text\"");
  write_file(dir / "broken.jsonl", "{\"text\": \"ok\"}\n\n{\"text\": \"cut\n");
  EXPECT_NE(error_of([&] { read_calibration_documents((dir / "broken.jsonl").string()); })
                .find("broken.jsonl: line 3 is not JSON"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { read_calibration_documents((dir / "missing.txt").string()); }),
            (dir / "missing.txt").string() + ": calibration text not found");
  fs::remove_all(dir);
}

class CalibrationWindows : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto tok = test::shared_path("models/stories260K/tok512.bin");
    if (!tok) GTEST_SKIP() << "shared test data not found: models/stories260K/tok512.bin";
    tokenizer_ = make_tokenizer(tokenizer_spec_from_llama2c(tok->string(), 512));
    const auto text = test::source_path("tests/fixtures/quant/pipeline/stories260K_calibration.txt");
    documents_ = read_calibration_documents(text.string());
    for (const auto& d : documents_) {
      const std::vector<int32_t> ids = tokenizer_->encode(d, true);
      stream_.insert(stream_.end(), ids.begin(), ids.end());
    }
  }

  // The stream position of each window, checking that it is a slice of the stream.
  std::vector<int64_t> positions(const std::vector<int32_t>& windows, int64_t seqlen) const {
    std::vector<int64_t> found;
    for (size_t w = 0; w * size_t(seqlen) < windows.size(); ++w) {
      const auto first = windows.begin() + int64_t(w) * seqlen;
      int64_t at = -1;
      for (int64_t p = 0; p + seqlen <= int64_t(stream_.size()) && at < 0; ++p)
        if (std::equal(first, first + seqlen, stream_.begin() + p)) at = p;
      found.push_back(at);
    }
    return found;
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<std::string> documents_;
  std::vector<int32_t> stream_;  // every document tokenized on its own (BOS first), joined
};

TEST_F(CalibrationWindows, NonOverlappingSlicesOfTheTokenStream) {
  CalibrationOptions o;
  o.train_windows = 20;
  o.heldout_windows = 5;
  o.seqlen = 100;
  o.seed = 7;
  const CalibrationSet set = make_calibration_set(*tokenizer_, documents_, o, "stories");
  EXPECT_EQ(set.documents, int64_t(documents_.size()));
  EXPECT_EQ(set.text_tokens, int64_t(stream_.size()));
  ASSERT_EQ(set.train.size(), size_t(20 * 100));
  ASSERT_EQ(set.heldout.size(), size_t(5 * 100));
  std::vector<int64_t> at = positions(set.train, 100);
  const std::vector<int64_t> heldout_at = positions(set.heldout, 100);
  at.insert(at.end(), heldout_at.begin(), heldout_at.end());
  std::set<int64_t> distinct;
  for (int64_t p : at) {
    ASSERT_GE(p, 0) << "a window is not a slice of the documents' token stream";
    EXPECT_EQ((p - at[0]) % 100, 0) << "windows share one grid of non-overlapping slots";
    distinct.insert(p);
  }
  EXPECT_EQ(distinct.size(), at.size()) << "no window is used twice (train and held-out disjoint)";
  // Random slots, not the first 25 in order.
  EXPECT_FALSE(std::is_sorted(at.begin(), at.end()));
}

TEST_F(CalibrationWindows, SeededAndReadFromFiles) {
  CalibrationOptions o;
  o.train_windows = 8;
  o.heldout_windows = 2;
  o.seqlen = 64;
  o.seed = 1;
  const std::string file = test::source_path("tests/fixtures/quant/pipeline/stories260K_calibration.txt").string();
  const CalibrationSet a = make_calibration_set(*tokenizer_, std::vector<std::string>{file}, o);
  const CalibrationSet b = make_calibration_set(*tokenizer_, documents_, o, "same");
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.heldout, b.heldout);
  o.seed = 2;
  const CalibrationSet c = make_calibration_set(*tokenizer_, documents_, o, "other seed");
  EXPECT_NE(a.train, c.train);
}

TEST_F(CalibrationWindows, TooLittleTextSaysHowManyTokensAreNeeded) {
  const fs::path dir = test::temp_dir("calib-short");
  write_file(dir / "short.txt", "Once upon a time there was a cat.\n\nThe end.\n");
  const int64_t tokens = int64_t(tokenizer_->encode("Once upon a time there was a cat.", true).size() +
                                 tokenizer_->encode("The end.", true).size());
  CalibrationOptions o;
  o.train_windows = 4;
  o.heldout_windows = 1;
  o.seqlen = 64;
  EXPECT_EQ(error_of([&] { make_calibration_set(*tokenizer_, std::vector<std::string>{(dir / "short.txt").string()}, o); }),
            str((dir / "short.txt").string(), ": the calibration text has only ", tokens,
                " tokens, but 4 calibration windows + 1 held-out windows of 64 tokens need 320 tokens; give more text "
                "or fewer or shorter windows"));
  write_file(dir / "blank.txt", "\n\n   \n");
  EXPECT_EQ(error_of([&] { make_calibration_set(*tokenizer_, std::vector<std::string>{(dir / "blank.txt").string()}, o); }),
            str((dir / "blank.txt").string(),
                ": the calibration text is empty (4 calibration windows + 1 held-out windows of 64 tokens need 320 tokens)"));
  o.seqlen = 1;
  EXPECT_NE(error_of([&] { make_calibration_set(*tokenizer_, documents_, o, "x"); }).find("at least 2"), std::string::npos);
  o.seqlen = 64;
  o.train_windows = 0;
  EXPECT_NE(error_of([&] { make_calibration_set(*tokenizer_, documents_, o, "x"); }).find("0 calibration windows"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { make_calibration_set(*tokenizer_, std::vector<std::string>{}, o); }),
            "calibration: no text file given");
  fs::remove_all(dir);
}

TEST(CalibrationDefault, FindsTheC4TextOrNamesWhereItLooked) {
  const auto shared = test::shared_path("data/c4-validation-2k.txt");
  if (!shared) {
    EXPECT_NE(error_of([] { default_calibration_text_path(); }).find("c4-validation-2k.txt was not found"),
              std::string::npos);
    return;
  }
  const fs::path found = default_calibration_text_path();
  EXPECT_EQ(found.filename(), "c4-validation-2k.txt");
  EXPECT_EQ(fs::file_size(found), fs::file_size(*shared));
}

}  // namespace
}  // namespace aqlm
