#include "app/studio/main_window.h"

#include <QApplication>
#include <QCloseEvent>
#include <QDockWidget>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>

#include "app/studio/compare_view.h"
#include "app/studio/compress_wizard.h"
#include "app/studio/fp_evaluator.h"
#include "app/studio/log_dock.h"
#include "app/studio/model_library_view.h"
#include "app/studio/run_controller.h"
#include "app/studio/run_dashboard.h"
#include "app/studio/runs_view.h"
#include "app/studio/settings_dialog.h"
#include "app/studio/system_monitor.h"

#if __has_include("app/studio/chat/chat_view.h")
#include "app/studio/chat/chat_view.h"
#define AQLM_STUDIO_HAVE_CHAT 1
#endif

namespace aqlm::studio {

MainWindow::MainWindow(StudioContext& context, QWidget* parent) : QMainWindow(parent), context_(context) {
  setObjectName(QStringLiteral("mainWindow"));
  setWindowTitle(tr("AQLM Studio"));
  setWindowIcon(QIcon(QStringLiteral(":/icons/aqlm-studio.png")));
  controller_ = new RunController(context_, this);
  fp_evaluator_ = new FpEvaluator(context_, this);
  monitor_ = new SystemMonitor(this);
  statusBar()->addPermanentWidget(monitor_);

  library_ = new ModelLibraryView(context_);
  auto* library_dock = new QDockWidget(tr("Models"), this);
  library_dock->setObjectName(QStringLiteral("libraryDock"));
  library_dock->setWidget(library_);
  library_dock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
  addDockWidget(Qt::LeftDockWidgetArea, library_dock);

  dashboard_ = new RunDashboard(context_, *controller_);
  runs_ = new RunsView(context_, *controller_);
  compare_ = new CompareView(context_);
#ifdef AQLM_STUDIO_HAVE_CHAT
  chat_ = new ChatView(context_);
#else
  auto* missing = new QLabel(tr("This build has no Chat tab (app/studio/chat is not there)."));
  missing->setAlignment(Qt::AlignCenter);
  chat_ = missing;
#endif
  tabs_ = new QTabWidget;
  tabs_->setObjectName(QStringLiteral("mainTabs"));
  tabs_->addTab(dashboard_, tr("Compress"));
  tabs_->addTab(runs_, tr("Runs"));
  tabs_->addTab(compare_, tr("Compare"));
  tabs_->addTab(chat_, tr("Chat"));
  setCentralWidget(tabs_);

  log_ = new LogDock(context_, this);
  addDockWidget(Qt::BottomDockWidgetArea, log_);

  connect(dashboard_, &RunDashboard::newCompressionRequested, this, &MainWindow::openWizard);
  connect(runs_, &RunsView::openRun, this, [this](qint64 id) {
    dashboard_->showRun(id);
    showTab(CompressTab);
  });
  connect(library_, &ModelLibraryView::runActivated, this, [this](qint64 id) {
    dashboard_->showRun(id);
    showTab(CompressTab);
  });
  connect(library_, &ModelLibraryView::modelSelected, compare_, [this](qint64 id) { compare_->selectModel(id); });
  connect(runs_, &RunsView::chatWith, this, &MainWindow::chatWith);
  connect(controller_, &RunController::runEnded, this, [this](qint64 id, store::RunStatus status, const QString&) {
    if (status == store::RunStatus::Finished) fp_evaluator_->evaluateReferenceFor(id);
    statusBar()->showMessage(tr("run %1 %2").arg(id).arg(store::name(status)), 10000);
  });
  connect(controller_, &RunController::runStarted, this, [this](qint64 id) {
    statusBar()->showMessage(tr("run %1 started").arg(id), 5000);
  });

  buildMenus();
  QSettings settings(context_.settingsFile(), QSettings::IniFormat);
  if (!restoreGeometry(settings.value(QStringLiteral("window/geometry")).toByteArray())) resize(1400, 900);
  // Wide enough for a run's line (method, config, status, bits, perplexity); a saved layout wins.
  resizeDocks({findChild<QDockWidget*>(QStringLiteral("libraryDock"))}, {330}, Qt::Horizontal);
  restoreState(settings.value(QStringLiteral("window/state")).toByteArray());
  controller_->recoverInterruptedRuns();
  library_->addDefaultModelIfEmpty();
  context_.info(tr("database %1").arg(QString::fromStdString(context_.databasePath().string())));
}

MainWindow::~MainWindow() { controller_->shutdown(); }

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("Add model &file…"), QKeySequence::Open, library_, &ModelLibraryView::chooseModelFile);
  file->addAction(tr("Add model f&older…"), QKeySequence(tr("Ctrl+Shift+O")), library_, &ModelLibraryView::chooseModelFolder);
  file->addAction(tr("&Remove selected model…"), QKeySequence(tr("Ctrl+Shift+Del")), library_, &ModelLibraryView::removeSelected);
  file->addAction(tr("&New compression…"), QKeySequence::New, this, &MainWindow::openWizard);
  file->addSeparator();
  file->addAction(tr("&Settings…"), QKeySequence(tr("Ctrl+,")), this, &MainWindow::openSettings);
  file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

  QMenu* run = menuBar()->addMenu(tr("&Run"));
  run->addAction(tr("&Pause"), QKeySequence(tr("Ctrl+P")), controller_, &RunController::pause);
  run->addAction(tr("&Resume the shown run"), QKeySequence(tr("Ctrl+R")), this, [this] {
    if (const auto id = dashboard_->shownRun()) {
      try {
        controller_->resume(*id);
      } catch (const Error& error) {
        context_.reportError(tr("Resume run %1").arg(*id), QString::fromStdString(error.what()));
      }
    }
  });
  run->addAction(tr("&Cancel"), QKeySequence(tr("Ctrl+Shift+X")), controller_, &RunController::cancel);

  QMenu* view = menuBar()->addMenu(tr("&View"));
  view->addAction(tr("&Compress"), QKeySequence(tr("Ctrl+1")), this, [this] { showTab(CompressTab); });
  view->addAction(tr("&Runs"), QKeySequence(tr("Ctrl+2")), this, [this] { showTab(RunsTab); });
  view->addAction(tr("C&ompare"), QKeySequence(tr("Ctrl+3")), this, [this] { showTab(CompareTab); });
  view->addAction(tr("C&hat"), QKeySequence(tr("Ctrl+4")), this, [this] { showTab(ChatTab); });
  view->addSeparator();
  QAction* log = log_->toggleViewAction();
  log->setShortcut(QKeySequence(tr("Ctrl+L")));
  view->addAction(log);

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About AQLM Studio"), this, [this] {
    QMessageBox::about(this, tr("About AQLM Studio"),
                       tr("<b>AQLM Studio</b><br>Compress local language models to 2–3 bits per weight with additive "
                          "quantization (AQLM), compare bit budgets and chat with the result."));
  });
}

CompressWizard* MainWindow::openWizard() {
  auto* wizard = new CompressWizard(context_, monitor_, this);
  wizard->setAttribute(Qt::WA_DeleteOnClose);
  wizard->setWindowModality(Qt::WindowModal);
  if (const auto id = library_->selectedModel())
    if (const auto model = context_.database().find_model(*id); model && model->format != "hf-aqlm")
      wizard->setModelPath(QString::fromStdString(model->path.string()));
  connect(wizard, &CompressWizard::startRequested, this,
          [this](qint64 model_id, const RunSpec& spec, double predicted_bits) {
            try {
              const store::Id run_id = controller_->startNew(model_id, spec, predicted_bits);
              dashboard_->showRun(run_id);
              showTab(CompressTab);
            } catch (const Error& error) {
              context_.reportError(tr("Starting a run"), QString::fromStdString(error.what()));
              context_.notifyDatabaseChanged();
            }
          });
  wizard->show();
  return wizard;
}

void MainWindow::showTab(Tab tab) { tabs_->setCurrentIndex(int(tab)); }

void MainWindow::chatWith(const QString& model_path) {
#ifdef AQLM_STUDIO_HAVE_CHAT
  static_cast<ChatView*>(chat_)->selectModel(model_path);
#else
  context_.warn(tr("no Chat tab in this build; %1 cannot be opened there").arg(model_path));
#endif
  showTab(ChatTab);
}

void MainWindow::openSettings() {
  QList<QPair<QString, QString>> gpus;
  for (const GpuInfo& gpu : monitor_->gpus())
    gpus << qMakePair(QStringLiteral("cuda:%1").arg(gpu.index), tr("GPU %1: %2").arg(gpu.index).arg(gpu.name));
  SettingsDialog dialog(context_.settings(), gpus, this);
  if (dialog.exec() == QDialog::Accepted) context_.setSettings(dialog.settings());
}

void MainWindow::saveGeometry() {
  QSettings settings(context_.settingsFile(), QSettings::IniFormat);
  settings.setValue(QStringLiteral("window/geometry"), QMainWindow::saveGeometry());
  settings.setValue(QStringLiteral("window/state"), saveState());
}

void MainWindow::closeEvent(QCloseEvent* event) {
  saveGeometry();
  if (controller_->isRunning()) {
    statusBar()->showMessage(tr("pausing the run at its next step so it can be resumed…"));
    controller_->shutdown();
  }
  event->accept();
}

}  // namespace aqlm::studio
