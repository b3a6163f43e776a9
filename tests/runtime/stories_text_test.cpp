// stories260K with its tokenizer (loaded through load_model): the golden text of shared/README.md.
#include <gtest/gtest.h>

#include "core/model/model.h"
#include "core/runtime/engine.h"
#include "core/runtime/generator.h"
#include "core/text/tokenizer.h"
#include "tests/support/test_paths.h"

namespace aqlm {
namespace {

TEST(StoriesGolden, GreedyContinuationDecodesToTheGoldenText) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = load_model(path.string());
  ASSERT_TRUE(model->tokenizer);
  auto engine = create_engine(*model);
  Generator gen(*engine);
  GenerationConfig c;
  c.max_new_tokens = 80;
  c.sampler.temperature = 0;
  std::vector<int32_t> ids;
  StreamDecoder stream(*model->tokenizer);
  std::string streamed;
  gen.generate(std::vector<int32_t>{model->tokenizer->bos_id()}, c, [&](int32_t id) {
    ids.push_back(id);
    streamed += stream.push(id);
  });
  streamed += stream.flush();
  const std::string golden =
      " Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw "
      "a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said, \"Lily, let's go to";
  ASSERT_EQ(ids.size(), 80u);
  // The golden text is the tokens' bytes joined; decode() and the stream also drop the
  // dummy-prefix space at the start, as Hugging Face and llama2.c do.
  std::string raw;
  for (int32_t id : ids) raw += model->tokenizer->token_bytes(id);
  EXPECT_EQ(raw, golden);
  EXPECT_EQ(model->tokenizer->decode(ids), golden.substr(1));
  EXPECT_EQ(streamed, golden.substr(1));
}

}  // namespace
}  // namespace aqlm
