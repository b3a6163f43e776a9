// The stories260K golden perplexity of shared/README.md, through the tokenizer.
#include <gtest/gtest.h>

#include "core/common/error.h"
#include "core/common/paths.h"
#include "core/eval/perplexity.h"
#include "core/model/model.h"
#include "core/runtime/engine.h"
#include "core/text/tokenizer.h"
#include "tests/support/test_paths.h"

namespace aqlm {
namespace {

std::string first_story() {
  const auto path = test::shared_path("data/tinystories-sample.txt");
  std::string text = read_text_file(*path);
  text = text.substr(0, text.find("<|endoftext|>"));
  const auto begin = text.find_first_not_of(" \t\r\n");
  const auto end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

TEST(StoriesPerplexity, FirstStoryMatchesTheGoldenNll) {
  AQLM_REQUIRE_SHARED(model_path, "models/stories260K/stories260K.bin");
  AQLM_REQUIRE_SHARED(text_path, "data/tinystories-sample.txt");
  const auto model = load_model(model_path.string());
  auto engine = create_engine(*model);
  const std::string story = first_story();
  ASSERT_EQ(model->tokenizer->encode(story).size(), 374u);
  PerplexityOptions o;
  o.seqlen = 374;  // the whole story is one window: 373 predictions
  const auto r = evaluate_perplexity(*engine, *model->tokenizer, story, o);
  EXPECT_EQ(r.tokens, 373);
  EXPECT_EQ(r.text_tokens, 374);
  // Golden 1.315989 from a float64 forward; the brief allows +-0.0005 (fp32 gives ~1e-6).
  EXPECT_NEAR(r.nll, 1.315989, 0.0005);
  EXPECT_NEAR(r.ppl, 3.7284, 0.002);
  std::printf("stories260K first story: mean NLL %.6f, perplexity %.4f\n", r.nll, r.ppl);
}

TEST(StoriesPerplexity, EmptyAndShortTextsSayHowManyTokensAreNeeded) {
  AQLM_REQUIRE_SHARED(model_path, "models/stories260K/stories260K.bin");
  const auto model = load_model(model_path.string());
  auto engine = create_engine(*model);
  auto message = [&](std::string_view text) {
    try {
      evaluate_perplexity(*engine, *model->tokenizer, text);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_EQ(message(""), "perplexity: the text is empty (one window needs 512 tokens)");
  EXPECT_EQ(message("Once upon a time"),
            "perplexity: the text has 5 tokens but one window needs 512 (use a longer text or a shorter window)");
}

}  // namespace
}  // namespace aqlm
