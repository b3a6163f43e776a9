// Opening the run database: creation, schema migrations, refusal of newer or foreign
// files with their bytes untouched, damaged files and moving them aside.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "core/store/run_database.h"
#include "core/store/schema.h"
#include "core/store/sqlite.h"
#include "tests/store/store_test_util.h"
#include "tests/support/test_paths.h"

namespace aqlm::store {
namespace {
namespace fs = std::filesystem;
using store_test::folder_listing;
using store_test::raw_exec;
using store_test::raw_integer;
using store_test::raw_text;
using store_test::read_bytes;

ModelInfo sample_model(const std::string& path = "/models/a.gguf") {
  return ModelInfo{"a", path, "gguf", "llama", 1000, "Q4_1", 4096};
}

// Fills a database through the API and closes it (the last close checkpoints the WAL).
fs::path make_database(const fs::path& folder, int step_losses = 0) {
  const fs::path file = folder / "runs.sqlite";
  auto db = RunDatabase::open(file);
  const Id model = db.add_model(sample_model());
  RunRequest request;
  request.model_id = model;
  request.config = "2x8g8";
  const Id run = db.create_run(request);
  std::vector<StepLoss> losses;
  for (int i = 0; i < step_losses; ++i) losses.push_back(StepLoss{i / 1000, "mlp.up_proj", i % 1000, "adam", 1.0 / (i + 1)});
  db.add_step_losses(run, losses);
  return file;
}

template <typename E>
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception of the expected type";
  return {};
}

TEST(StoreOpen, CreatesFolderAndFileWithWalVersionAndApplicationId) {
  const fs::path file = aqlm::test::temp_dir("store-create") / "deeper" / "still" / "runs.sqlite";
  {
    auto db = RunDatabase::open(file);
    EXPECT_EQ(db.schema_version(), 1);
    EXPECT_EQ(db.file(), file);
    EXPECT_TRUE(db.list_models().empty());
  }
  ASSERT_TRUE(fs::exists(file));
  EXPECT_EQ(raw_text(file, "PRAGMA journal_mode"), "wal");  // persistent in the file
  EXPECT_EQ(raw_integer(file, "PRAGMA user_version"), 1);
  EXPECT_EQ(raw_integer(file, "PRAGMA application_id"), kApplicationId);
  EXPECT_EQ(raw_integer(file, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"), 8);
}

TEST(StoreOpen, EmptyFileBecomesADatabase) {
  const fs::path file = aqlm::test::temp_dir("store-empty") / "runs.sqlite";
  store_test::write_bytes(file, "");
  auto db = RunDatabase::open(file);
  EXPECT_EQ(db.schema_version(), 1);
  EXPECT_GT(fs::file_size(file), 0u);
}

TEST(StoreOpen, ReopeningKeepsRowsAndForeignKeysAreEnforced) {
  const fs::path file = make_database(aqlm::test::temp_dir("store-reopen"));
  auto db = RunDatabase::open(file);
  EXPECT_EQ(db.schema_version(), 1);
  ASSERT_EQ(db.list_models().size(), 1u);
  EXPECT_EQ(db.list_models()[0].run_count, 1);
  // ON DELETE CASCADE only works with foreign keys on, which is per connection.
  db.remove_model(db.list_models()[0].id);
  EXPECT_EQ(raw_integer(file, "SELECT count(*) FROM runs"), 0);
}

TEST(StoreOpen, MissingFileNameAndFolderInPlaceOfFile) {
  EXPECT_EQ(message_of<Error>([] { RunDatabase::open(""); }), "run database: no file name given");
  const fs::path folder = aqlm::test::temp_dir("store-folder");
  EXPECT_EQ(message_of<Error>([&] { RunDatabase::open(folder); }), folder.string() + ": is not a file");
}

// ------------------------------------------------------------------ migrations

// A v2 a later release might ship: a new column with a default, and a backfill.
constexpr Migration kTestV2{2, "model_license",
                            "ALTER TABLE models ADD COLUMN license TEXT NOT NULL DEFAULT '';"
                            "UPDATE models SET license = 'apache-2.0' WHERE format = 'gguf';"};

std::vector<Migration> with(const Migration& extra) {
  std::vector<Migration> list(builtin_migrations().begin(), builtin_migrations().end());
  list.push_back(extra);
  return list;
}

TEST(StoreMigrations, BuiltinListIsOneInitialMigration) {
  ASSERT_EQ(builtin_migrations().size(), 1u);
  EXPECT_EQ(builtin_migrations()[0].version, 1);
  EXPECT_EQ(builtin_migrations()[0].name, "initial");
  EXPECT_EQ(latest_schema_version(), 1);
}

TEST(StoreMigrations, FromEmptyFileAppliesEveryStep) {
  const fs::path file = aqlm::test::temp_dir("store-mig-empty") / "runs.sqlite";
  sql::Connection connection(file, sql::Connection::Access::ReadWriteCreate);
  EXPECT_EQ(schema_version(connection), 0);
  const auto migrations = with(kTestV2);
  EXPECT_EQ(migrate(connection, migrations), 2);
  EXPECT_EQ(raw_integer(file, "SELECT count(*) FROM pragma_table_info('models') WHERE name = 'license'"), 1);
  EXPECT_EQ(migrate(connection, migrations), 2);  // nothing left to do
}

TEST(StoreMigrations, FromVersionOneKeepsRowsThenTheOlderProgramRefusesIt) {
  const fs::path file = make_database(aqlm::test::temp_dir("store-mig-v1"), 50);
  {
    sql::Connection connection(file, sql::Connection::Access::ReadWriteCreate);
    EXPECT_EQ(migrate(connection, with(kTestV2)), 2);
  }
  EXPECT_EQ(raw_integer(file, "PRAGMA user_version"), 2);
  EXPECT_EQ(raw_text(file, "SELECT license FROM models"), "apache-2.0");
  EXPECT_EQ(raw_integer(file, "SELECT count(*) FROM step_losses"), 50);
  // This build knows only version 1: it must refuse the upgraded file.
  EXPECT_THROW(RunDatabase::open(file), Error);
}

TEST(StoreMigrations, FailingStepRollsBackToThePreviousVersion) {
  const fs::path file = make_database(aqlm::test::temp_dir("store-mig-fail"));
  const Migration broken{2, "broken", "CREATE TABLE half_done (x); INSERT INTO no_such_table VALUES (1);"};
  sql::Connection connection(file, sql::Connection::Access::ReadWriteCreate);
  const std::string message = message_of<Error>([&] { migrate(connection, with(broken)); });
  EXPECT_NE(message.find("upgrading the schema to version 2 (broken) failed: no such table: no_such_table"),
            std::string::npos)
      << message;
  EXPECT_EQ(schema_version(connection), 1);
  EXPECT_EQ(raw_integer(file, "SELECT count(*) FROM sqlite_schema WHERE name = 'half_done'"), 0);
  EXPECT_EQ(raw_integer(file, "SELECT count(*) FROM models"), 1);
}

TEST(StoreMigrations, StepThatBreaksAForeignKeyIsRolledBack) {
  const fs::path file = make_database(aqlm::test::temp_dir("store-mig-fk"));
  // Foreign keys are off while a migration runs (so it may rebuild tables) but checked before commit.
  const Migration orphaning{2, "orphaning", "DELETE FROM models;"};
  sql::Connection connection(file, sql::Connection::Access::ReadWriteCreate);
  const std::string message = message_of<Error>([&] { migrate(connection, with(orphaning)); });
  EXPECT_NE(message.find("failed: table runs has a row whose foreign key points nowhere"), std::string::npos)
      << message;
  EXPECT_EQ(schema_version(connection), 1);
  EXPECT_EQ(raw_integer(file, "SELECT count(*) FROM models"), 1);
}

TEST(StoreMigrations, ListWithAGapIsRejected) {
  const fs::path file = aqlm::test::temp_dir("store-mig-gap") / "runs.sqlite";
  sql::Connection connection(file, sql::Connection::Access::ReadWriteCreate);
  const Migration v3{3, "skips_two", "SELECT 1;"};
  EXPECT_EQ(message_of<Error>([&] { migrate(connection, with(v3)); }),
            "run database: migration 'skips_two' has version 3 but should have 2");
  EXPECT_EQ(schema_version(connection), 0);
}

// ------------------------------------------------------------------ refusals

TEST(StoreOpen, NewerSchemaIsRefusedAndTheFileStaysByteIdentical) {
  const fs::path folder = aqlm::test::temp_dir("store-newer");
  const fs::path file = make_database(folder, 3000);
  raw_exec(file, "PRAGMA user_version = 7");  // a later AQLM Studio wrote it
  const std::vector<std::string> listing = folder_listing(folder);
  ASSERT_EQ(listing, std::vector<std::string>{"runs.sqlite"});
  const std::string bytes = read_bytes(file);
  const std::string message = message_of<Error>([&] { RunDatabase::open(file); });
  EXPECT_EQ(message, file.string() +
                         ": the run database has schema version 7 but this AQLM Studio understands versions up to 1; "
                         "update AQLM Studio or choose another database file (the file was left untouched)");
  EXPECT_TRUE(read_bytes(file) == bytes);
  EXPECT_EQ(folder_listing(folder), listing);  // no -wal or -shm left behind either
}

TEST(StoreOpen, NewerSchemaStillOnlyInTheWriteAheadLogIsRefusedToo) {
  // A newer program crashed before checkpointing: the header still says 1, the log says 7.
  const fs::path folder = aqlm::test::temp_dir("store-newer-wal");
  const fs::path file = make_database(folder, 3000);
  {
    sql::Connection newer(file, sql::Connection::Access::ReadWriteCreate);
    newer.exec("PRAGMA user_version = 7", "test");
    store_test::keep_wal_on_close(newer);
  }
  ASSERT_TRUE(fs::exists(file.string() + "-wal"));
  const std::string bytes = read_bytes(file);
  ASSERT_EQ(bytes.substr(60, 4), std::string("\0\0\0\1", 4));  // the header's user_version
  const std::string wal = read_bytes(file.string() + "-wal");
  const std::string message = message_of<Error>([&] { RunDatabase::open(file); });
  EXPECT_NE(message.find("has schema version 7 but this AQLM Studio understands versions up to 1"), std::string::npos)
      << message;
  EXPECT_TRUE(read_bytes(file) == bytes);
  EXPECT_TRUE(read_bytes(file.string() + "-wal") == wal);
}

TEST(StoreOpen, SqliteFileOfAnotherProgramIsRefusedUntouched) {
  const fs::path folder = aqlm::test::temp_dir("store-foreign");
  const fs::path tables = folder / "other.db";
  raw_exec(tables, "CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine');");
  const std::string bytes = read_bytes(tables);
  EXPECT_EQ(message_of<Error>([&] { RunDatabase::open(tables); }),
            tables.string() + ": is a SQLite database of another program (it has tables but no AQLM Studio schema "
                              "version); choose another file");
  EXPECT_TRUE(read_bytes(tables) == bytes);

  const fs::path marked = folder / "marked.db";
  raw_exec(marked, "PRAGMA application_id = 1234; CREATE TABLE t (x);");
  EXPECT_EQ(message_of<Error>([&] { RunDatabase::open(marked); }),
            marked.string() + ": is a SQLite database of another program (application id 0x4d2), not an AQLM Studio "
                              "run database; choose another file");
}

// ------------------------------------------------------------------ damaged files

TEST(StoreCorrupt, TextFileIsNotADatabase) {
  const fs::path folder = aqlm::test::temp_dir("store-text");
  const fs::path file = folder / "runs.sqlite";
  std::string text;
  for (int i = 0; i < 20; ++i) text += "this is a line of notes, not a database\n";
  store_test::write_bytes(file, text);
  const auto message = message_of<CorruptDatabaseError>([&] { RunDatabase::open(file); });
  EXPECT_EQ(message, file.string() + ": is not a database (it does not start with a SQLite header); move it aside "
                                     "and start a fresh one");
  EXPECT_EQ(read_bytes(file), text);
  EXPECT_EQ(folder_listing(folder), std::vector<std::string>{"runs.sqlite"});

  store_test::write_bytes(file, "SQLite");  // a truncated header
  EXPECT_THROW(RunDatabase::open(file), CorruptDatabaseError);
}

// Overwrites page `page` (1-based) of a 4096-byte-page database with a pattern.
void damage_page(const fs::path& file, size_t page) {
  std::string bytes = read_bytes(file);
  ASSERT_EQ(raw_integer(file, "PRAGMA page_size"), 4096);
  ASSERT_GE(bytes.size(), page * 4096);
  for (size_t i = (page - 1) * 4096; i < page * 4096; ++i) bytes[i] = char(0xA5 ^ (i * 7));
  store_test::write_bytes(file, bytes);
}

TEST(StoreCorrupt, DamagedPageIsDetectedBeforeAnyWriteAndMovedAsideWithItsBytes) {
  const fs::path folder = aqlm::test::temp_dir("store-damaged");
  const fs::path file = make_database(folder, 20000);
  const auto pages = raw_integer(file, "PRAGMA page_count");
  ASSERT_GT(pages, 40);
  damage_page(file, size_t(pages / 2));
  const std::string damaged = read_bytes(file);

  try {
    RunDatabase::open(file);
    FAIL() << "a damaged database opened";
  } catch (const CorruptDatabaseError& e) {
    EXPECT_EQ(e.file(), file);
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(file.string() + ": ", 0), 0u) << message;
    EXPECT_NE(message.find("damaged"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
  }
  EXPECT_TRUE(read_bytes(file) == damaged);  // nothing was written to it

  auto recreated = RunDatabase::move_aside_and_recreate(file);
  EXPECT_TRUE(std::regex_match(recreated.corrupt_copy.filename().string(),
                               std::regex(R"(runs\.sqlite\.corrupt-\d{8}T\d{6}Z)")))
      << recreated.corrupt_copy;
  EXPECT_EQ(recreated.corrupt_copy.parent_path(), folder);
  EXPECT_TRUE(read_bytes(recreated.corrupt_copy) == damaged);
  EXPECT_EQ(recreated.database.file(), file);
  EXPECT_TRUE(recreated.database.list_models().empty());
  recreated.database.check_integrity();

  // A second recovery within the same second gets its own name; nothing is overwritten.
  const std::string fresh = read_bytes(file);
  auto again = RunDatabase::move_aside_and_recreate(file);
  EXPECT_NE(again.corrupt_copy, recreated.corrupt_copy);
  EXPECT_TRUE(read_bytes(recreated.corrupt_copy) == damaged);
  EXPECT_TRUE(fs::exists(again.corrupt_copy));
}

TEST(StoreCorrupt, IndexThatDisagreesWithItsTableFailsTheFullCheckOnly) {
  const fs::path file = make_database(aqlm::test::temp_dir("store-index"));
  // Re-label the index over runs.status as an index over runs.config: every page is still
  // well formed (quick_check passes, so the file opens) but the entries are wrong.
  raw_exec(file, "PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = 'CREATE INDEX runs_by_status ON "
                 "runs(config)' WHERE name = 'runs_by_status'; PRAGMA writable_schema = OFF;");
  auto db = RunDatabase::open(file);
  const std::string message = message_of<CorruptDatabaseError>([&] { db.check_integrity(); });
  EXPECT_NE(message.find(": the database is damaged (integrity_check: "), std::string::npos) << message;
  EXPECT_NE(message.find("runs_by_status"), std::string::npos) << message;
}

TEST(StoreCorrupt, WriteAheadLogMovesAsideWithItsDatabase) {
  const fs::path folder = aqlm::test::temp_dir("store-damaged-wal");
  const fs::path file = make_database(folder);
  {
    sql::Connection writer(file, sql::Connection::Access::ReadWriteCreate);
    writer.exec("INSERT INTO models (name, path, format, architecture, parameters, dtype, size_bytes, added_ms) "
                "VALUES ('b', '/models/b', 'gguf', 'llama', 1, 'Q8_0', 1, 0)",
                "test");
    store_test::keep_wal_on_close(writer);
  }
  const std::string wal = read_bytes(file.string() + "-wal");
  ASSERT_FALSE(wal.empty());
  auto recreated = RunDatabase::move_aside_and_recreate(file);
  EXPECT_TRUE(read_bytes(recreated.corrupt_copy.string() + "-wal") == wal);
  // The kept pair still opens as a database with both models (the second only in its log).
  EXPECT_EQ(raw_integer(recreated.corrupt_copy, "SELECT count(*) FROM models"), 2);
}

}  // namespace
}  // namespace aqlm::store
