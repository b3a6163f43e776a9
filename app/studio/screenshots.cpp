#include "app/studio/screenshots.h"

#include <QAbstractButton>
#include <QCheckBox>
#include <QCoreApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QLineEdit>
#include <QSpinBox>
#include <QTabWidget>
#include <QThread>

#include <cstdio>
#include <functional>

#include "app/studio/compare_view.h"
#include "app/studio/compress_wizard.h"
#include "app/studio/fp_evaluator.h"
#include "app/studio/main_window.h"
#include "app/studio/model_library_view.h"
#include "app/studio/run_controller.h"
#include "app/studio/run_dashboard.h"
#include "app/studio/runs_view.h"
#include "app/studio/wizard_pages.h"
#if __has_include("app/studio/chat/chat_view.h")
#include "app/studio/chat/chat_settings_panel.h"
#include "app/studio/chat/chat_view.h"
#define AQLM_STUDIO_HAVE_CHAT 1
#endif
#include "core/quant/pipeline_output.h"

namespace aqlm::studio {

namespace {

bool wait_until(const std::function<bool()>& done, int timeout_ms) {
  QElapsedTimer timer;
  timer.start();
  while (!done()) {
    if (timer.elapsed() > timeout_ms) return false;
    QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
    QThread::msleep(10);
  }
  return true;
}

bool save(QWidget& widget, const QString& file) {
  QCoreApplication::processEvents();
  const bool ok = widget.grab().save(file);
  std::fprintf(stderr, "%s %s\n", ok ? "wrote" : "could not write", file.toLocal8Bit().constData());
  return ok;
}

// The Chat tab talking to the compressed model: the finished AQLM run with the most bits (the
// most fluent of the screenshot runs), asked to go on with a story, its reply streamed in full.
bool chat_screenshot(MainWindow& window, const std::vector<store::Run>& finished, const QString& file) {
  window.showTab(MainWindow::ChatTab);
#ifdef AQLM_STUDIO_HAVE_CHAT
  auto* chat = qobject_cast<ChatView*>(window.chatView());
  const store::Run* best = nullptr;
  for (const store::Run& run : finished)
    if (run.method == store::QuantMethod::Aqlm && (!best || run.bits_measured.value_or(0) > best->bits_measured.value_or(0)))
      best = &run;
  if (chat && best) {
    chat->selectModel(QString::fromStdString(best->output_dir.string()));
    const bool ready = wait_until([&] { return chat->runner(0)->state() == ChatModelRunner::State::Ready; }, 60000);
    // A reply of a few sentences, the same on every rendering.
    chat->settingsPanel()->maxNewTokens()->setValue(96);
    chat->settingsPanel()->randomSeed()->setChecked(false);
    chat->settingsPanel()->seed()->setValue(7);
    bool replied = false;
    const auto connection = QObject::connect(chat, &ChatView::turnFinished, chat, [&](bool ok) { replied = ok; });
    if (ready && chat->send(QStringLiteral("Once upon a time, there was a little dog named Max.")))
      wait_until([&] { return replied || !chat->busy(); }, 120000);
    QObject::disconnect(connection);
    if (!replied)
      std::fprintf(stderr, "aqlm-studio: the chat screenshot has no reply (%s)\n", chat->statusText(0).toLocal8Bit().constData());
  }
#else
  (void)finished;
#endif
  return save(window, file);
}

}  // namespace

int render_screenshots(MainWindow& window, const QString& dir, const QString& model, const QString& text,
                       const QString& budget_model) {
  QDir().mkpath(dir);
  window.resize(1500, 940);
  window.show();
  StudioContext& context = window.context();
  if (!model.isEmpty() && context.database().runs_with_status(store::RunStatus::Finished).empty()) {
    // The library may be adding the default model at the same time: wait for this one's row.
    const auto path = std::filesystem::absolute(model.toStdString()).lexically_normal();
    std::optional<store::Id> model_id;
    window.library()->addModel(model);
    const bool added = wait_until([&] {
      if (const auto row = context.database().find_model_by_path(path)) model_id = row->id;
      return model_id && window.library()->description(QString::fromStdString(path.string()));
    }, 60000);
    if (!added) {
      std::fprintf(stderr, "aqlm-studio: %s could not be added\n", model.toLocal8Bit().constData());
      return 1;
    }
    struct Recipe {
      PipelineMethod method;
      const char* aqlm;
      int bits;
    };
    const Recipe recipes[] = {{PipelineMethod::Aqlm, "1x8g4", 0}, {PipelineMethod::Aqlm, "2x8g4", 0},
                              {PipelineMethod::Gptq, "", 3}, {PipelineMethod::Rtn, "", 4}, {PipelineMethod::Rtn, "", 3}};
    const ModelDescription description = *window.library()->description(
        QString::fromStdString(context.database().find_model(*model_id)->path.string()));
    for (const Recipe& recipe : recipes) {
      RunSpec spec;
      PipelineSettings& s = spec.pipeline;
      s.model = model.toStdString();
      s.method = recipe.method;
      if (recipe.method == PipelineMethod::Aqlm) s.aqlm = AqlmConfig::parse(recipe.aqlm);
      s.bits = recipe.bits > 0 ? recipe.bits : 2;
      s.calibration_files = {text.toStdString()};
      s.eval_text = text.toStdString();
      s.nsamples = 8;
      s.seqlen = 64;
      s.layer_max_epochs = 4;
      s.layer_adam_steps = 20;
      s.finetune_epochs = 2;
      s.overwrite = true;
      s.out_dir = QDir::cleanPath(QDir(dir).filePath(QStringLiteral("../.screenshot-runs/%1").arg(QString::fromStdString(
                                         method_config_name(s))))).toStdString();
      std::optional<store::RunStatus> ended;
      auto connection = QObject::connect(window.controller(), &RunController::runEnded,
                                         [&](qint64, store::RunStatus status, const QString&) { ended = status; });
      window.controller()->startNew(*model_id, spec, plan_bits(description.config, s).bits_per_parameter);
      const bool done = wait_until([&] { return ended.has_value(); }, 300000);
      QObject::disconnect(connection);
      if (!done || *ended != store::RunStatus::Finished) {
        std::fprintf(stderr, "aqlm-studio: a screenshot run did not finish\n");
        return 1;
      }
    }
    wait_until([&] { return !window.fpEvaluator()->busy(); }, 120000);
  }
  const auto finished = context.database().runs_with_status(store::RunStatus::Finished);
  if (!finished.empty()) window.dashboard()->showRun(finished.front().id);
  window.compareView()->reload();
  bool ok = true;
  window.showTab(MainWindow::CompressTab);
  ok &= save(window, QDir(dir).filePath(QStringLiteral("compress.png")));
  window.showTab(MainWindow::RunsTab);
  ok &= save(window, QDir(dir).filePath(QStringLiteral("runs.png")));
  window.showTab(MainWindow::CompareTab);
  ok &= save(window, QDir(dir).filePath(QStringLiteral("compare.png")));
  ok &= chat_screenshot(window, finished, QDir(dir).filePath(QStringLiteral("chat.png")));

  CompressWizard* wizard = window.openWizard();
  QString budget_source = budget_model;
  if (budget_source.isEmpty() && !finished.empty())
    budget_source = QString::fromStdString(context.database().find_model(finished.front().model_id)->path.string());
  if (!budget_source.isEmpty()) {
    wizard->setModelPath(budget_source);
    if (!wait_until([&] { return wizard->currentPage()->isComplete(); }, 120000)) {
      std::fprintf(stderr, "aqlm-studio: %s could not be read for the wizard\n", budget_source.toLocal8Bit().constData());
      return 1;
    }
    wizard->next();
    ok &= save(*wizard, QDir(dir).filePath(QStringLiteral("wizard-budget.png")));
    wizard->next();
    ok &= save(*wizard, QDir(dir).filePath(QStringLiteral("wizard-method.png")));
  }
  wizard->close();
  return ok ? 0 : 1;
}

}  // namespace aqlm::studio
