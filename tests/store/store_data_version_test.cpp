// RunDatabase::data_version: what the studio polls to notice runs that aqlm-cli (--db) writes
// from another process. It must move for another connection's commit and stay put for the
// connection's own, or the studio would either miss CLI runs or reload after each of its writes.
#include <gtest/gtest.h>

#include "core/store/run_database.h"
#include "tests/support/test_paths.h"

namespace aqlm {
namespace {

TEST(StoreDataVersion, ChangesForAnotherConnectionsCommitOnly) {
  const auto dir = test::temp_dir("store-data-version");
  store::RunDatabase studio = store::RunDatabase::open(dir / "runs.sqlite");
  store::RunDatabase cli = store::RunDatabase::open(dir / "runs.sqlite");
  const std::int64_t start = studio.data_version();
  EXPECT_EQ(studio.data_version(), start);  // nothing happened

  store::ModelInfo model;
  model.name = "m";
  model.path = dir / "m.gguf";
  studio.add_model(model);
  EXPECT_EQ(studio.data_version(), start);  // its own commit

  const std::int64_t before_cli = cli.data_version();
  model.path = dir / "other.gguf";
  cli.add_model(model);
  EXPECT_NE(studio.data_version(), start);       // the other connection's commit
  EXPECT_EQ(cli.data_version(), before_cli);     // and, for the writer, its own
  EXPECT_EQ(studio.list_models().size(), 2u);
}

}  // namespace
}  // namespace aqlm
