// SmolLM2-135M-Instruct on WikiText-2 (shared/data/wikitext2-test.txt): our tokenizer's ids
// equal those of the Hugging Face `tokenizers` library (fixture), and the perplexity of the
// first windows equals the numpy float64 reference's (scripts/reference/forward_reference.py smollm2).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/common/paths.h"
#include "core/eval/perplexity.h"
#include "core/model/model.h"
#include "core/runtime/engine.h"
#include "core/text/tokenizer.h"
#include "tests/support/test_paths.h"

namespace aqlm {
namespace {

// The same polynomial hash as forward_reference.py's ids_checksum.
uint64_t ids_checksum(const std::vector<int32_t>& ids) {
  const unsigned __int128 mod = (uint64_t(1) << 61) - 1;
  unsigned __int128 h = 0;
  for (int32_t id : ids) h = (h * 1000003u + unsigned(id) + 1u) % mod;
  return uint64_t(h);
}

TEST(SmolLM2Perplexity, WikiText2FirstWindowsMatchTheReference) {
  AQLM_REQUIRE_SMOLLM2(model_path);
  AQLM_REQUIRE_SHARED(text_path, "data/wikitext2-test.txt");
  const auto ref = nlohmann::json::parse(read_text_file(test::source_path("tests/fixtures/runtime/smollm2_reference.json")))
                       .at("wikitext2");
  const auto model = load_model(model_path.string());
  const std::vector<int32_t> ids = model->tokenizer->encode(read_text_file(text_path));
  ASSERT_EQ(int64_t(ids.size()), ref.at("tokens").get<int64_t>());
  EXPECT_EQ(ids_checksum(ids), ref.at("ids_checksum").get<uint64_t>());
  const auto window_ids = ref.at("window_ids").get<std::vector<int32_t>>();
  ASSERT_TRUE(std::equal(window_ids.begin(), window_ids.end(), ids.begin()));

  auto engine = create_engine(*model);
  PerplexityOptions o;
  o.seqlen = ref.at("seqlen").get<int>();
  o.max_windows = ref.at("windows").get<int>();
  const auto r = evaluate_perplexity(*engine, ids, o);
  EXPECT_EQ(r.windows, o.max_windows);
  EXPECT_EQ(r.tokens, int64_t(o.max_windows) * (o.seqlen - 1));
  const double ref_ppl = ref.at("ppl").get<double>();
  // The brief's bar: within 0.5% of the reference perplexity. (fp32 lands ~1e-5 away.)
  EXPECT_NEAR(r.ppl, ref_ppl, 0.005 * ref_ppl);
  EXPECT_NEAR(r.nll, ref.at("nll").get<double>(), 1e-3);
  std::printf("SmolLM2 WikiText-2 %d windows of %d: ppl %.4f (reference %.4f), %.1f s\n", r.windows, r.seqlen, r.ppl,
              ref_ppl, r.seconds);
}

}  // namespace
}  // namespace aqlm
