#include "app/studio/compare_view.h"

#include <QComboBox>
#include <QFile>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QTextStream>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>
#include <map>

#include "app/studio/plot.h"
#include "app/studio/system_monitor.h"

namespace aqlm::studio {

namespace {

QColor method_colour(std::optional<store::QuantMethod> method) {
  if (!method) return Qt::darkGray;
  switch (*method) {
    case store::QuantMethod::Aqlm: return QColor(31, 119, 180);
    case store::QuantMethod::Gptq: return QColor(44, 160, 44);
    case store::QuantMethod::Rtn: return QColor(255, 127, 14);
  }
  return Qt::black;
}

struct Point {
  store::ComparePoint compare;
  std::optional<store::Run> run;
  double x = 0;
};

}  // namespace

std::vector<int> pareto_front(const std::vector<ParetoInput>& points) {
  std::vector<int> order(points.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = int(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return points[size_t(a)].x != points[size_t(b)].x ? points[size_t(a)].x < points[size_t(b)].x
                                                      : points[size_t(a)].y < points[size_t(b)].y;
  });
  std::vector<int> front;
  double best_y = INFINITY;
  for (int i : order)
    if (points[size_t(i)].y < best_y) {
      front.push_back(i);
      best_y = points[size_t(i)].y;
    }
  return front;
}

CompareView::CompareView(StudioContext& context, QWidget* parent) : QWidget(parent), context_(context) {
  setObjectName(QStringLiteral("compareView"));
  model_ = new QComboBox;
  model_->setObjectName(QStringLiteral("compareModel"));
  dataset_ = new QComboBox;
  dataset_->setObjectName(QStringLiteral("compareDataset"));
  x_axis_ = new QComboBox;
  x_axis_->setObjectName(QStringLiteral("compareAxis"));
  x_axis_->addItem(tr("bits per parameter"));
  x_axis_->addItem(tr("output size (MB)"));
  auto* png = new QPushButton(tr("Export PNG…"));
  auto* csv = new QPushButton(tr("Export CSV…"));
  connect(png, &QPushButton::clicked, this, [this] {
    const QString file = QFileDialog::getSaveFileName(this, tr("Export plot"), QStringLiteral("compare.png"), tr("PNG (*.png)"));
    if (!file.isEmpty()) exportPng(file);
  });
  connect(csv, &QPushButton::clicked, this, [this] {
    const QString file = QFileDialog::getSaveFileName(this, tr("Export table"), QStringLiteral("compare.csv"), tr("CSV (*.csv)"));
    if (!file.isEmpty()) exportCsv(file);
  });
  connect(model_, &QComboBox::currentIndexChanged, this, &CompareView::reloadDatasets);
  connect(dataset_, &QComboBox::currentIndexChanged, this, &CompareView::replot);
  connect(x_axis_, &QComboBox::currentIndexChanged, this, &CompareView::replot);
  connect(&context_, &StudioContext::databaseChanged, this, &CompareView::reload);

  scatter_ = new QCustomPlot;
  scatter_->setObjectName(QStringLiteral("compareScatter"));
  scatter_->setMinimumHeight(260);
  scatter_->yAxis->setLabel(tr("perplexity (lower is better)"));
  scatter_->legend->setVisible(true);
  scatter_->legend->setFont(QFont(font().family(), 8));
  heatmap_ = new QCustomPlot;
  heatmap_->setObjectName(QStringLiteral("compareHeatmap"));
  heatmap_->setMinimumHeight(180);
  table_ = new QTableWidget(0, 7);
  table_->setObjectName(QStringLiteral("compareTable"));
  table_->setHorizontalHeaderLabels(
      {tr("Run"), tr("Method"), tr("Config"), tr("Bits/param"), tr("Size"), tr("Perplexity"), tr("Pareto")});
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->verticalHeader()->setVisible(false);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);

  auto* top = new QHBoxLayout;
  top->addWidget(new QLabel(tr("Model:")));
  top->addWidget(model_, 1);
  top->addWidget(new QLabel(tr("Evaluated on:")));
  top->addWidget(dataset_, 1);
  top->addWidget(new QLabel(tr("x axis:")));
  top->addWidget(x_axis_);
  top->addWidget(png);
  top->addWidget(csv);
  auto* lower = new QSplitter(Qt::Horizontal);
  lower->addWidget(table_);
  lower->addWidget(heatmap_);
  lower->setStretchFactor(0, 2);
  lower->setStretchFactor(1, 3);
  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(scatter_);
  split->addWidget(lower);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(top);
  layout->addWidget(split, 1);
  reload();
}

void CompareView::reload() {
  const QVariant selected = model_->currentData();
  QSignalBlocker block(model_);
  model_->clear();
  for (const store::ModelSummary& model : context_.database().list_models())
    if (model.run_count > 0) model_->addItem(QString::fromStdString(model.name), qint64(model.id));
  const int index = model_->findData(selected);
  model_->setCurrentIndex(index >= 0 ? index : 0);
  reloadDatasets();
}

void CompareView::selectModel(store::Id model_id) {
  const int index = model_->findData(qint64(model_id));
  if (index >= 0) model_->setCurrentIndex(index);
}

void CompareView::reloadDatasets() {
  const QVariant selected = dataset_->currentData();
  QSignalBlocker block(dataset_);
  dataset_->clear();
  if (model_->currentIndex() >= 0) {
    std::map<std::pair<std::string, int>, int> seen;
    for (const store::Evaluation& e : context_.database().evaluations_of_model(model_->currentData().toLongLong()))
      if (seen.emplace(std::make_pair(e.dataset, e.seqlen), 0).second)
        dataset_->addItem(tr("%1, %2-token windows").arg(QString::fromStdString(e.dataset)).arg(e.seqlen),
                          QStringList{QString::fromStdString(e.dataset), QString::number(e.seqlen)});
  }
  const int index = dataset_->findData(selected);
  dataset_->setCurrentIndex(index >= 0 ? index : dataset_->count() - 1);
  replot();
}

void CompareView::replot() {
  scatter_->clearGraphs();
  scatter_->clearItems();
  heatmap_->clearPlottables();
  heatmap_->plotLayout()->clear();
  heatmap_->plotLayout()->addElement(0, 0, new QCPAxisRect(heatmap_));
  table_->setRowCount(0);
  points_ = 0;
  reference_ = false;
  const bool by_size = x_axis_->currentIndex() == 1;
  scatter_->xAxis->setLabel(by_size ? tr("output size (MB)") : tr("bits per parameter (quantized linears)"));
  if (model_->currentIndex() < 0 || dataset_->currentIndex() < 0) {
    scatter_->replot();
    heatmap_->replot();
    return;
  }
  store::RunDatabase& db = context_.database();
  const store::Id model_id = model_->currentData().toLongLong();
  const QStringList key = dataset_->currentData().toStringList();
  std::vector<Point> points;
  std::optional<double> fp_ppl;
  for (const store::ComparePoint& c : db.compare_points(model_id, key[0].toStdString(), key[1].toInt())) {
    if (!c.run_id) {
      fp_ppl = c.perplexity;
      continue;
    }
    Point p{c, db.find_run(*c.run_id), 0};
    if (!p.run) continue;
    p.x = by_size ? double(p.run->output_bytes.value_or(0)) / 1e6 : c.bits.value_or(0);
    points.push_back(p);
  }
  std::vector<ParetoInput> inputs;
  for (const Point& p : points) inputs.push_back({p.x, p.compare.perplexity});
  const std::vector<int> front = pareto_front(inputs);

  std::map<store::QuantMethod, QCPGraph*> graphs;
  double x_min = INFINITY, x_max = -INFINITY, y_min = INFINITY, y_max = -INFINITY;
  for (const Point& p : points) {
    QCPGraph*& graph = graphs[*p.compare.method];
    if (!graph) {
      graph = scatter_->addGraph();
      graph->setName(QString(store::name(*p.compare.method)).toUpper());
      graph->setLineStyle(QCPGraph::lsNone);
      graph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, method_colour(p.compare.method), 9));
    }
    graph->addData(p.x, p.compare.perplexity);
    auto* label = new QCPItemText(scatter_);
    label->position->setCoords(p.x, p.compare.perplexity);
    label->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
    label->setText(QStringLiteral(" %1").arg(QString::fromStdString(p.compare.config)));
    label->setFont(QFont(font().family(), 8));
    x_min = std::min(x_min, p.x);
    x_max = std::max(x_max, p.x);
    y_min = std::min(y_min, p.compare.perplexity);
    y_max = std::max(y_max, p.compare.perplexity);
  }
  points_ = int(points.size());
  if (front.size() > 1) {
    QCPGraph* line = scatter_->addGraph();
    line->setName(tr("Pareto front"));
    line->setPen(QPen(QColor(120, 120, 120), 1.2));
    line->setLineStyle(QCPGraph::lsStepLeft);
    for (int i : front) line->addData(points[size_t(i)].x, points[size_t(i)].compare.perplexity);
  }
  if (fp_ppl) {
    reference_ = true;
    y_min = std::min(y_min, *fp_ppl);
    y_max = std::max(y_max, *fp_ppl);
  }
  if (points.empty()) x_min = 0, x_max = 16;
  const double x_pad = std::max(0.15 * (x_max - x_min), 0.25);
  scatter_->xAxis->setRange(std::max(0.0, x_min - x_pad), x_max + x_pad);
  if (fp_ppl) {
    QCPGraph* line = scatter_->addGraph();
    line->setName(tr("fp model: %1").arg(*fp_ppl, 0, 'f', 2));
    line->setPen(QPen(Qt::darkGray, 1.5, Qt::DashLine));
    line->setData({scatter_->xAxis->range().lower, scatter_->xAxis->range().upper}, {*fp_ppl, *fp_ppl});
  }
  if (y_max >= y_min) {
    const double y_pad = std::max(0.1 * (y_max - y_min), 0.05 * y_max);
    scatter_->yAxis->setRange(std::max(0.0, y_min - y_pad), y_max + y_pad);
  }
  scatter_->replot();

  // The table, the Pareto points marked.
  for (size_t i = 0; i < points.size(); ++i) {
    const Point& p = points[i];
    const int row = table_->rowCount();
    table_->insertRow(row);
    const bool on_front = std::find(front.begin(), front.end(), int(i)) != front.end();
    const QStringList cells{QString::number(*p.compare.run_id), QString(store::name(*p.compare.method)).toUpper(),
                            QString::fromStdString(p.compare.config), QString::number(p.compare.bits.value_or(0), 'f', 3),
                            p.run->output_bytes ? format_bytes(double(*p.run->output_bytes)) : QStringLiteral("–"),
                            QString::number(p.compare.perplexity, 'f', 3), on_front ? tr("yes") : QString()};
    for (int c = 0; c < cells.size(); ++c) table_->setItem(row, c, new QTableWidgetItem(cells[c]));
  }
  if (fp_ppl) {
    const int row = table_->rowCount();
    table_->insertRow(row);
    const QStringList cells{tr("fp model"), QString(), QString(), QString(), QString(), QString::number(*fp_ppl, 'f', 3), QString()};
    for (int c = 0; c < cells.size(); ++c) table_->setItem(row, c, new QTableWidgetItem(cells[c]));
  }

  // The heatmap: one row per run, one column per quantized layer, log10 of its relative error.
  std::vector<std::vector<store::LayerMetric>> layers;
  QSharedPointer<QCPAxisTickerText> run_ticks(new QCPAxisTickerText);
  size_t columns = 0;
  for (const Point& p : points) {
    layers.push_back(db.layer_table(*p.compare.run_id));
    columns = std::max(columns, layers.back().size());
    run_ticks->addTick(double(layers.size() - 1),
                       QStringLiteral("%1 %2").arg(QString(store::name(*p.compare.method)).toUpper(),
                                                   QString::fromStdString(p.compare.config)));
  }
  QCPAxisRect* rect = heatmap_->axisRect();
  rect->axis(QCPAxis::atBottom)->setLabel(tr("layer (block × 7 + projection, quantization order)"));
  rect->axis(QCPAxis::atLeft)->setTicker(run_ticks);
  if (columns > 0) {
    auto* map = new QCPColorMap(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
    map->data()->setSize(int(columns), int(layers.size()));
    map->data()->setRange(QCPRange(0, double(columns - 1)), QCPRange(0, double(layers.size() - 1)));
    for (size_t r = 0; r < layers.size(); ++r)
      for (size_t c = 0; c < columns; ++c)
        map->data()->setCell(int(c), int(r),
                             c < layers[r].size() && layers[r][c].relative_error > 0 ? std::log10(layers[r][c].relative_error)
                                                                                      : std::nan(""));
    auto* scale = new QCPColorScale(heatmap_);
    heatmap_->plotLayout()->addElement(0, 1, scale);
    scale->setLabel(tr("log10 relative error"));
    map->setColorScale(scale);
    map->setGradient(QCPColorGradient::gpThermal);
    map->setInterpolate(false);
    map->rescaleDataRange();
    rect->axis(QCPAxis::atBottom)->setRange(-0.5, double(columns) - 0.5);
    rect->axis(QCPAxis::atLeft)->setRange(-0.5, double(layers.size()) - 0.5);
  }
  heatmap_->replot();
}

int CompareView::pointCount() const { return points_; }
bool CompareView::hasReferenceLine() const { return reference_; }

void CompareView::exportPng(const QString& file) {
  if (!scatter_->savePng(file, 0, 0, 2.0)) context_.reportError(tr("Export PNG"), tr("%1: cannot write the image").arg(file));
  else context_.info(tr("plot saved to %1").arg(file));
}

void CompareView::exportCsv(const QString& file) {
  QFile out(file);
  if (!out.open(QIODevice::WriteOnly | QIODevice::Truncate | QIODevice::Text)) {
    context_.reportError(tr("Export CSV"), tr("%1: cannot write: %2").arg(file, out.errorString()));
    return;
  }
  QTextStream stream(&out);
  QStringList header;
  for (int c = 0; c < table_->columnCount(); ++c) header << table_->horizontalHeaderItem(c)->text();
  stream << header.join(',') << '\n';
  for (int r = 0; r < table_->rowCount(); ++r) {
    QStringList cells;
    for (int c = 0; c < table_->columnCount(); ++c) {
      QString text = table_->item(r, c) ? table_->item(r, c)->text() : QString();
      if (text.contains(',') || text.contains('"')) text = '"' + text.replace('"', QStringLiteral("\"\"")) + '"';
      cells << text;
    }
    stream << cells.join(',') << '\n';
  }
  context_.info(tr("table saved to %1").arg(file));
}

}  // namespace aqlm::studio
