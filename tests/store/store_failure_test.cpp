// Failures of the file system under the run database: folders and files that may not
// be written, and a write that runs out of room. Each case runs in a child process
// (a gtest death test) because it changes the user or the file size limit.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "core/store/run_database.h"
#include "tests/support/test_paths.h"

namespace aqlm::store {
namespace {
namespace fs = std::filesystem;

fs::path make_database(const fs::path& folder) {
  fs::create_directories(folder);
  const fs::path file = folder / "runs.sqlite";
  auto db = RunDatabase::open(file);
  const Id model = db.add_model(ModelInfo{"a", "/models/a.gguf", "gguf", "llama", 1000, "Q4_1", 4096});
  RunRequest request;
  request.model_id = model;
  request.config = "2x8g8";
  db.create_run(request);
  return file;
}

// Permission bits do not bind root: drop to "nobody" (in the child only) when running as root.
void become_unprivileged() {
  if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) {
    std::cerr << "cannot drop root privileges";
    std::_Exit(3);
  }
}

// Runs `open` and reports its aqlm::Error on stderr for the parent's regex; exit code 0
// only when it threw aqlm::Error.
template <typename F>
void report_error(F open) {
  try {
    open();
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    std::_Exit(0);
  }
  std::cerr << "no error";
  std::_Exit(1);
}

TEST(StoreFailures, NewDatabaseInAFolderThatMayNotBeWritten) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const fs::path locked = aqlm::test::temp_dir("store-locked-folder");
  ::chmod(locked.c_str(), 0555);
  EXPECT_EXIT(
      {
        become_unprivileged();
        report_error([&] { RunDatabase::open(locked / "runs.sqlite"); });
      },
      ::testing::ExitedWithCode(0),
      "error: .*/runs.sqlite: the folder .*store-locked-folder may not be written \\(Permission denied\\); the "
      "database and its write-ahead log need it");
}

TEST(StoreFailures, ExistingDatabaseFileThatMayNotBeWritten) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const fs::path folder = aqlm::test::temp_dir("store-locked-file");
  const fs::path file = make_database(folder);
  ::chmod(folder.c_str(), 0777);  // the -wal/-shm files may be created; the database itself not written
  ::chmod(file.c_str(), 0444);
  EXPECT_EXIT(
      {
        become_unprivileged();
        report_error([&] { RunDatabase::open(file); });
      },
      ::testing::ExitedWithCode(0),
      "error: .*/runs.sqlite: the database file is read-only \\(check its permissions\\); AQLM Studio needs to "
      "write to it");
}

TEST(StoreFailures, ExistingDatabaseInAFolderThatMayNotBeWritten) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const fs::path folder = aqlm::test::temp_dir("store-locked-db-folder");
  const fs::path file = make_database(folder);
  ::chmod(file.c_str(), 0666);
  ::chmod(folder.c_str(), 0555);  // WAL mode cannot create its -wal and -shm files here
  EXPECT_EXIT(
      {
        become_unprivileged();
        report_error([&] { RunDatabase::open(file); });
      },
      ::testing::ExitedWithCode(0), "error: .*/runs.sqlite: the folder .*store-locked-db-folder may not be written \\(Permission denied\\); "
      "the database and its write-ahead log need it");
}

// Child of the next test: fills the disk (a 1 MiB file size limit), then checks the damage.
void write_until_full_then_recover(const fs::path& file) {
  auto db = RunDatabase::open(file);
  const Id run = db.runs_with_status(RunStatus::Queued).at(0).id;
  // The kernel refuses to grow any file past 1 MiB (EFBIG) as a full disk refuses with ENOSPC.
  ::signal(SIGXFSZ, SIG_IGN);
  rlimit limit{};
  ::getrlimit(RLIMIT_FSIZE, &limit);
  const rlimit small{1 << 20, limit.rlim_max};
  ::setrlimit(RLIMIT_FSIZE, &small);
  std::vector<StepLoss> losses;
  for (int i = 0; i < 200000; ++i) losses.push_back(StepLoss{i / 7000, "mlp.down_proj", i % 7000, "adam", 0.5});
  try {
    db.add_step_losses(run, losses);
    std::cerr << "no error";
    std::_Exit(1);
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  // The batch is all or nothing, and the connection still works once there is room.
  if (!db.step_losses(run).empty()) std::_Exit(2);
  ::setrlimit(RLIMIT_FSIZE, &limit);
  db.add_step_losses(run, std::span(losses).first(1000));
  std::_Exit(db.step_losses(run).size() == 1000 ? 0 : 4);
}

TEST(StoreFailures, WriteThatRunsOutOfRoomIsAClearErrorAndRollsBack) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const fs::path file = make_database(aqlm::test::temp_dir("store-full"));
  EXPECT_EXIT(
      write_until_full_then_recover(file),
      ::testing::ExitedWithCode(0),
      "error: .*/runs.sqlite: adding 200000 step losses to run 1 failed: (I/O error \\(File too large\\)|the disk is "
      "full)");
}

}  // namespace
}  // namespace aqlm::store
