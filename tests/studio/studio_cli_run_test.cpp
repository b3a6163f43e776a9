// "The CLI writes to the same database when asked, so CLI runs appear in the studio": a run made
// by `aqlm-cli quantize ... --db` while the studio is open shows up in Runs (noticed through
// PRAGMA data_version, without a restart), with its model in the library, its 35 layer rows in
// the dashboard, its evaluation, and settings the studio can resume from. Rows are written once:
// by the child, through RunDatabaseSink.
#include <QProcess>
#include <QTest>
#include <QTreeWidget>

#include <cmath>

#include "app/studio/model_library_view.h"
#include "app/studio/run_controller.h"
#include "app/studio/run_dashboard.h"
#include "app/studio/run_spec.h"
#include "app/studio/runs_view.h"
#include "tests/studio/studio_test_support.h"

using namespace aqlm;
using namespace aqlm::studio;

class StudioCliRunTest : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void cliRunAppearsInTheOpenStudio() {
    const auto model = test::shared_file("models/stories260K/stories260K.bin");
    const auto text = test::shared_file("data/tinystories-sample.txt");
    if (!model || !text) QSKIP("shared/models/stories260K or shared/data/tinystories-sample.txt is absent");
    const std::filesystem::path data = test::fresh_data_dir(QStringLiteral("cli-run"));
    const QString out_dir = QString::fromStdString((data / "cli-aqlm").string());

    auto studio = test::open_studio();
    QVERIFY(studio);
    studio->window->show();
    QCOMPARE(studio->window->runsView()->rowCount(), 0);

    // --db without a value: RunDatabase::default_path(), the studio's database under the
    // AQLM_DATA_DIR the child inherits. It comes last, where it cannot take MODEL as its value.
    QProcess cli;
    cli.setProgram(qEnvironmentVariable("AQLM_CLI"));
    cli.setArguments({"quantize", QString::fromStdString(model->string()), "--out", out_dir, "--method", "aqlm",
                      "--config", "1x8g4", "--layer-epochs", "2", "--layer-steps", "10", "--no-finetune",
                      "--calib", QString::fromStdString(text->string()), "--nsamples", "4", "--seqlen", "64",
                      "--eval-text", QString::fromStdString(text->string()), "--device", "cpu", "--threads", "2", "--db"});
    cli.setProcessChannelMode(QProcess::MergedChannels);
    cli.start();
    QVERIFY(cli.waitForStarted());
    // The studio's event loop keeps running while the child works (QTRY waits process events).
    QTRY_VERIFY_WITH_TIMEOUT(cli.state() == QProcess::NotRunning, 120000);
    const QString output = QString::fromUtf8(cli.readAll());
    QVERIFY2(cli.exitStatus() == QProcess::NormalExit && cli.exitCode() == 0, qPrintable(output));
    QVERIFY2(output.contains(QStringLiteral("recording run 1 in %1")
                                 .arg(QString::fromStdString(store::RunDatabase::default_path().string()))),
             qPrintable(output));

    // Noticed by the open studio (it polls every second), no reload asked for.
    RunsView& runs = *studio->window->runsView();
    QTRY_COMPARE_WITH_TIMEOUT(runs.rowCount(), 1, 5000);
    QTRY_COMPARE_WITH_TIMEOUT(runs.cellText(0, QStringLiteral("Status")), QStringLiteral("finished"), 5000);
    QCOMPARE(runs.cellText(0, QStringLiteral("Config")), QStringLiteral("1x8g4"));

    store::RunDatabase& db = studio->context->database();
    const std::optional<store::Run> run = db.find_run(1);
    QVERIFY(run);
    QCOMPARE(int(db.layer_table(run->id).size()), 5 * 7);  // once each: one writer
    QCOMPARE(int(db.artifacts_of_run(run->id).size()), 1);
    std::optional<double> run_ppl;
    for (const store::Evaluation& e : db.evaluations_of_model(run->model_id))
      if (e.run_id == run->id) run_ppl = e.perplexity;
    QVERIFY(run_ppl && std::isfinite(*run_ppl));
    QVERIFY(runs.cellText(0, QStringLiteral("Perplexity")).startsWith(QString::number(*run_ppl, 'f', 3)));

    // The CLI added the model to the library, and the library lists the run under it.
    const std::optional<store::Model> library_model = db.find_model(run->model_id);
    QVERIFY(library_model);
    QCOMPARE(library_model->path, std::filesystem::canonical(*model));
    auto* tree = studio->window->library()->findChild<QTreeWidget*>();
    QVERIFY(tree);
    QTRY_COMPARE_WITH_TIMEOUT(tree->topLevelItemCount(), 1, 5000);
    QCOMPARE(tree->topLevelItem(0)->childCount(), 1);

    // The dashboard shows its layers; its settings are ones the studio can start again
    // (Resume): the same model, output and AQLM options, with absolute paths.
    studio->window->dashboard()->showRun(run->id);
    QCOMPARE(studio->window->dashboard()->layerRows(), 35);
    QCOMPARE(studio->window->dashboard()->progress(), 1.0);
    const RunSpec spec = RunSpec::from_json(run->settings);
    QCOMPARE(spec.pipeline.model, model->string());
    QCOMPARE(QString::fromStdString(spec.pipeline.out_dir), out_dir);
    QCOMPARE(QString::fromStdString(spec.pipeline.aqlm.name()), QStringLiteral("1x8g4"));
    const QStringList again = quantize_arguments(spec, QStringLiteral("log.jsonl"), QStringLiteral("runs.sqlite"), run->id, true);
    QVERIFY(again.contains(QStringLiteral("--no-finetune")));
    QCOMPARE(again[again.indexOf(QStringLiteral("--nsamples")) + 1], QStringLiteral("4"));
    QVERIFY(studio->errors.isEmpty());
  }
};

QTEST_MAIN(StudioCliRunTest)
#include "studio_cli_run_test.moc"
