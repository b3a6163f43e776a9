#pragma once
// The Compress tab's run dashboard: overall progress with ETA, the table of quantized layers,
// the live loss plot (the current layer's loss per step; each finished layer's final error),
// the perplexity plot (the run's evaluation against the fp model's line), the child's log, and
// Pause / Cancel / Resume. It shows the active run live and any earlier run from the database.
#include <QWidget>

#include <optional>

#include "app/studio/run_controller.h"
#include "app/studio/studio_context.h"

class QCustomPlot;
class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QTableWidget;

namespace aqlm::studio {

class RunDashboard : public QWidget {
  Q_OBJECT
 public:
  RunDashboard(StudioContext& context, RunController& controller, QWidget* parent = nullptr);

  void showRun(store::Id run_id);  // loads it from the database (and follows it if active)
  std::optional<store::Id> shownRun() const { return run_id_; }

  // For tests and screenshots.
  int layerRows() const;
  double progress() const;  // 0..1
  QCustomPlot* lossPlot() const { return loss_plot_; }
  QCustomPlot* perplexityPlot() const { return ppl_plot_; }

 Q_SIGNALS:
  void newCompressionRequested();

 private:
  void onEvents(qint64 run_id, const QVector<aqlm::ProgressEvent>& events);
  void onEnded(qint64 run_id, aqlm::store::RunStatus status, const QString& message);
  void addLayerRow(const store::LayerMetric& metric);
  void reloadPerplexity();
  void updateButtons();
  void replotLosses();

  StudioContext& context_;
  RunController& controller_;
  std::optional<store::Id> run_id_;
  int blocks_ = 0;
  int layers_done_ = 0;
  QString current_layer_;
  QVector<double> step_x_, step_y_;          // the current layer's losses
  QVector<double> layer_x_, layer_y_;        // each finished layer's relative error
  QStringList layer_labels_;

  QLabel* title_;
  QProgressBar* progress_;
  QLabel* eta_;
  QPushButton* pause_;
  QPushButton* cancel_;
  QPushButton* resume_;
  QTableWidget* table_;
  QCustomPlot* loss_plot_;
  QCustomPlot* ppl_plot_;
  QPlainTextEdit* log_;
};

}  // namespace aqlm::studio
