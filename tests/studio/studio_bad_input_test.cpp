// Done-criterion 4: bad input, one test each, and the studio stays usable.
#include <QAbstractButton>
#include <QLabel>
#include <QListWidget>
#include <QRadioButton>
#include <QSpinBox>
#include <QTest>

#include <fstream>
#include <sqlite3.h>

#include "app/studio/compress_wizard.h"
#include "app/studio/run_controller.h"
#include "app/studio/studio_app.h"
#include "app/studio/wizard_pages.h"
#include "tests/studio/studio_test_support.h"

using namespace aqlm;
using namespace aqlm::studio;

namespace {

std::string read_bytes(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

class StudioBadInputTest : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void folderThatIsNotAModel() {
    const auto data = test::fresh_data_dir(QStringLiteral("not-a-model"));
    std::filesystem::create_directories(data / "notes");
    std::ofstream(data / "notes" / "readme.txt") << "not weights";
    auto studio = test::open_studio();
    CompressWizard* wizard = studio->window->openWizard();
    wizard->setModelPath(QString::fromStdString((data / "notes").string()));
    auto* page = static_cast<ModelPage*>(wizard->currentPage());
    QTRY_VERIFY_WITH_TIMEOUT(page->statusText().contains(QStringLiteral("Cannot use this")), 10000);
    QVERIFY2(page->statusText().contains(QStringLiteral("no config.json")), qPrintable(page->statusText()));
    QVERIFY(!page->isComplete());
    QVERIFY(!wizard->button(QWizard::NextButton)->isEnabled());
  }

  void emptyCalibrationFile() {
    const auto model = test::shared_file("models/stories260K/stories260K.bin");
    if (!model) QSKIP("shared stories260K is absent");
    const auto data = test::fresh_data_dir(QStringLiteral("empty-calibration"));
    std::ofstream(data / "empty.txt") << "\n\n  \n";
    auto studio = test::open_studio();
    CompressWizard* wizard = studio->window->openWizard();
    wizard->setModelPath(QString::fromStdString(model->string()));
    QTRY_VERIFY_WITH_TIMEOUT(wizard->currentPage()->isComplete(), 30000);
    wizard->next();
    static_cast<BudgetPage*>(wizard->currentPage())->choose(-1, QStringLiteral("1x8g4"));
    wizard->next();
    auto* page = static_cast<MethodPage*>(wizard->currentPage());
    wizard->findChild<QRadioButton*>(QStringLiteral("calibrationOwn"))->setChecked(true);
    wizard->findChild<QListWidget*>(QStringLiteral("calibrationFiles"))->addItem(QString::fromStdString((data / "empty.txt").string()));
    wizard->findChild<QSpinBox*>(QStringLiteral("nsamples"))->setValue(5);
    QVERIFY2(page->calibrationStatus().contains(QStringLiteral("empty.txt: the file has no text")), qPrintable(page->calibrationStatus()));
    QVERIFY(!page->isComplete());
  }

  void runThatFailsInsideTheWorker() {
    const auto model = test::shared_file("models/stories260K/stories260K.bin");
    if (!model) QSKIP("shared stories260K is absent");
    const auto data = test::fresh_data_dir(QStringLiteral("failing-run"));
    std::ofstream(data / "short.txt") << "Once upon a time.";  // far fewer tokens than 64 windows of 512 need
    auto studio = test::open_studio();
    store::ModelInfo info{"stories260K", *model, "llama2c", "llama", 260032, "float32", 1056540};
    const store::Id model_id = studio->context->database().add_model(info);
    RunSpec spec;
    spec.pipeline.model = model->string();
    spec.pipeline.out_dir = (data / "out").string();
    spec.pipeline.aqlm = AqlmConfig::parse("1x8g4");
    spec.pipeline.calibration_files = {(data / "short.txt").string()};
    spec.pipeline.nsamples = 64;
    std::optional<store::RunStatus> ended;
    connect(studio->window->controller(), &RunController::runEnded, this,
            [&](qint64, store::RunStatus status, const QString&) { ended = status; });
    const store::Id run_id = studio->window->controller()->startNew(model_id, spec, 4.74);
    QTRY_VERIFY_WITH_TIMEOUT(ended.has_value(), 60000);
    QCOMPARE(*ended, store::RunStatus::Failed);
    const auto run = studio->context->database().find_run(run_id);
    QCOMPARE(run->status, store::RunStatus::Failed);
    QVERIFY2(QString::fromStdString(run->error_message).contains(QStringLiteral("tokens")), run->error_message.c_str());
    QCOMPARE(studio->errors.size(), 1);  // the error dialog, intercepted
    QVERIFY(studio->errors.front().startsWith(QStringLiteral("Run %1 failed: ").arg(run_id)));
    QVERIFY(!studio->window->controller()->isRunning());  // alive and ready for the next run
  }

  void databaseFromANewerSchema() {
    const auto data = test::fresh_data_dir(QStringLiteral("newer-schema"));
    const auto file = data / "runs.sqlite";
    { store::RunDatabase::open(file); }
    sqlite3* db = nullptr;
    QCOMPARE(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    QCOMPARE(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    const std::string before = read_bytes(file);
    auto studio = test::open_studio();
    QVERIFY(!studio);  // the studio does not start on it
    QStringList told;
    DatabasePrompts prompts{[](const QString&, const QString&) { return true; },
                            [&](const QString& title, const QString& text) { told << title + ": " + text; }};
    QVERIFY(!open_studio_database(file, prompts));
    QCOMPARE(told.size(), 1);
    QVERIFY2(told.front().contains(QStringLiteral("newer")), qPrintable(told.front()));
    QVERIFY(read_bytes(file) == before);  // no data touched
  }

  void corruptDatabase() {
    const auto data = test::fresh_data_dir(QStringLiteral("corrupt"));
    const auto file = data / "runs.sqlite";
    const std::string garbage(8192, '\x5a');
    std::ofstream(file, std::ios::binary) << garbage;
    QStringList asked, told;
    DatabasePrompts prompts{[&](const QString& title, const QString&) { asked << title; return true; },
                            [&](const QString& title, const QString& text) { told << title + ": " + text; }};
    std::optional<store::RunDatabase> fresh = open_studio_database(file, prompts);
    QVERIFY(fresh);
    QCOMPARE(asked.size(), 1);
    QVERIFY(fresh->list_models().empty());
    int kept = 0;
    for (const auto& entry : std::filesystem::directory_iterator(data))
      if (entry.path().filename().string().starts_with("runs.sqlite.corrupt-")) kept += read_bytes(entry.path()) == garbage;
    QCOMPARE(kept, 1);  // the old bytes, aside
  }
};

QTEST_MAIN(StudioBadInputTest)
#include "studio_bad_input_test.moc"
