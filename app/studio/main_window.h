#pragma once
// The studio's main window: the model library on the left, tabs Compress (run dashboard),
// Runs, Compare and Chat in the middle, the log dock below, RAM/GPU memory in the status bar,
// menus with shortcuts, settings, and the window geometry remembered between sessions.
#include <QMainWindow>

#include "app/studio/studio_context.h"

class QTabWidget;

namespace aqlm::studio {

class CompareView;
class CompressWizard;
class FpEvaluator;
class LogDock;
class ModelLibraryView;
class RunController;
class RunDashboard;
class RunsView;
class SystemMonitor;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  enum Tab { CompressTab, RunsTab, CompareTab, ChatTab };

  explicit MainWindow(StudioContext& context, QWidget* parent = nullptr);
  ~MainWindow() override;

  // The wizard as a window-modal dialog (not exec(): tests drive it); its Start begins the run.
  CompressWizard* openWizard();
  void showTab(Tab tab);
  void chatWith(const QString& model_path);  // switches to Chat with that model selected

  StudioContext& context() { return context_; }
  ModelLibraryView* library() const { return library_; }
  RunController* controller() const { return controller_; }
  RunDashboard* dashboard() const { return dashboard_; }
  RunsView* runsView() const { return runs_; }
  CompareView* compareView() const { return compare_; }
  QWidget* chatView() const { return chat_; }
  QTabWidget* tabs() const { return tabs_; }
  LogDock* logDock() const { return log_; }
  FpEvaluator* fpEvaluator() const { return fp_evaluator_; }

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  void buildMenus();
  void openSettings();
  void saveGeometry();

  StudioContext& context_;
  RunController* controller_;
  FpEvaluator* fp_evaluator_;
  SystemMonitor* monitor_;
  ModelLibraryView* library_;
  RunDashboard* dashboard_;
  RunsView* runs_;
  CompareView* compare_;
  QWidget* chat_;
  QTabWidget* tabs_;
  LogDock* log_;
};

}  // namespace aqlm::studio
