#pragma once
// The Compare tab: the evaluated runs of one model on one evaluation text as a scatter of bits
// per parameter (or output size) against perplexity, one colour per method, the fp model as a
// reference line and the Pareto front drawn; a table of the same points; each selected run's
// per-layer relative error as a heatmap; export of the plot (PNG) and the table (CSV).
#include <QWidget>

#include "app/studio/studio_context.h"

class QComboBox;
class QCustomPlot;
class QTableWidget;

namespace aqlm::studio {

struct ParetoInput {
  double x = 0, y = 0;
};
// Indices of the points on the lower-left front (no other point has both x <= and y <, or
// x < and y <=), sorted by x.
std::vector<int> pareto_front(const std::vector<ParetoInput>& points);

class CompareView : public QWidget {
  Q_OBJECT
 public:
  explicit CompareView(StudioContext& context, QWidget* parent = nullptr);
  void reload();
  void selectModel(store::Id model_id);

  int pointCount() const;      // runs plotted
  bool hasReferenceLine() const;
  QCustomPlot* scatterPlot() const { return scatter_; }
  void exportPng(const QString& file);
  void exportCsv(const QString& file);

 private:
  void reloadDatasets();
  void replot();
  StudioContext& context_;
  QComboBox* model_;
  QComboBox* dataset_;
  QComboBox* x_axis_;
  QCustomPlot* scatter_;
  QCustomPlot* heatmap_;
  QTableWidget* table_;
  int points_ = 0;
  bool reference_ = false;
};

}  // namespace aqlm::studio
