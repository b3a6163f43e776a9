#include "app/studio/run_dashboard.h"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include <cmath>

#include "app/studio/plot.h"

#include "app/studio/run_spec.h"

namespace aqlm::studio {

namespace {

QString eta_text(double seconds) {
  if (seconds < 90) return QObject::tr("%1 s left").arg(int(std::lround(seconds)));
  if (seconds < 5400) return QObject::tr("%1 min left").arg(int(std::lround(seconds / 60)));
  return QObject::tr("%1 h left").arg(seconds / 3600, 0, 'f', 1);
}

QTableWidgetItem* number_item(double value, char format, int precision) {
  auto* item = new QTableWidgetItem(std::isnan(value) ? QStringLiteral("–") : QString::number(value, format, precision));
  item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  return item;
}

// Ticks of a logarithmic axis at 1, 2 and 5 times powers of ten (every digit when the range is
// narrower, only powers of ten when it spans many decades), each labelled once with two
// significant digits ("0.05", "0.1", "0.2"). QCustomPlot's log ticker puts ticks at powers of
// ten only and, with a precision that fits whole decades, labels two nearby ticks the same.
class LogAxisTicker : public QCPAxisTicker {
 protected:
  QVector<double> createTickVector(double, const QCPRange& range) override {
    const double upper = range.upper > 0 ? range.upper : 1.0;
    const double lower = range.lower > 0 ? range.lower : upper * 1e-3;
    const int first = int(std::floor(std::log10(lower))), last = int(std::ceil(std::log10(upper)));
    auto ticks_with = [&](std::initializer_list<int> mantissas, int decade_step) {
      QVector<double> ticks;
      for (int k = first; k <= last; ++k)
        if ((k - first) % decade_step == 0)
          for (int m : mantissas) {
            const double tick = m * std::pow(10.0, k);
            if (tick >= lower * (1 - 1e-9) && tick <= upper * (1 + 1e-9)) ticks << tick;
          }
      return ticks;
    };
    QVector<double> ticks = ticks_with({1, 2, 5}, 1);
    if (ticks.size() < 3) ticks = ticks_with({1, 2, 3, 4, 5, 6, 7, 8, 9}, 1);
    if (ticks.size() > 8) ticks = ticks_with({1}, 1);
    for (int step = 2; ticks.size() > 8; ++step) ticks = ticks_with({1}, step);
    return ticks;
  }
  QVector<double> createSubTickVector(int, const QVector<double>&) override { return {}; }
  QString getTickLabel(double tick, const QLocale& locale, QChar, int) override { return locale.toString(tick, 'g', 2); }
};

void style_axis_rect(QCPAxisRect* rect, const QString& x_label, const QString& y_label, bool log_y) {
  rect->axis(QCPAxis::atBottom)->setLabel(x_label);
  rect->axis(QCPAxis::atBottom)->ticker()->setTickCount(3);  // the two plots share a narrow column
  rect->axis(QCPAxis::atLeft)->setLabel(y_label);
  if (log_y) {
    rect->axis(QCPAxis::atLeft)->setScaleType(QCPAxis::stLogarithmic);
    rect->axis(QCPAxis::atLeft)->setTicker(QSharedPointer<QCPAxisTicker>(new LogAxisTicker));
  }
}

}  // namespace

RunDashboard::RunDashboard(StudioContext& context, RunController& controller, QWidget* parent)
    : QWidget(parent), context_(context), controller_(controller) {
  setObjectName(QStringLiteral("runDashboard"));
  title_ = new QLabel(tr("No run yet. Start one with New compression (Ctrl+N)."));
  title_->setObjectName(QStringLiteral("runTitle"));
  title_->setWordWrap(true);
  QFont title_font = title_->font();
  title_font.setBold(true);
  title_->setFont(title_font);
  progress_ = new QProgressBar;
  progress_->setObjectName(QStringLiteral("runProgress"));
  progress_->setRange(0, 1000);
  progress_->setFormat(QStringLiteral("%p%"));
  eta_ = new QLabel;
  eta_->setObjectName(QStringLiteral("runEta"));
  eta_->setMinimumWidth(140);
  auto* start = new QPushButton(tr("New compression…"));
  start->setObjectName(QStringLiteral("newCompression"));
  pause_ = new QPushButton(tr("Pause"));
  pause_->setObjectName(QStringLiteral("pauseRun"));
  cancel_ = new QPushButton(tr("Cancel"));
  cancel_->setObjectName(QStringLiteral("cancelRun"));
  resume_ = new QPushButton(tr("Resume"));
  resume_->setObjectName(QStringLiteral("resumeRun"));
  connect(start, &QPushButton::clicked, this, &RunDashboard::newCompressionRequested);
  connect(pause_, &QPushButton::clicked, &controller_, &RunController::pause);
  connect(cancel_, &QPushButton::clicked, &controller_, &RunController::cancel);
  connect(resume_, &QPushButton::clicked, this, [this] {
    if (!run_id_) return;
    try {
      controller_.resume(*run_id_);
    } catch (const Error& error) {
      context_.reportError(tr("Resume run %1").arg(*run_id_), QString::fromStdString(error.what()));
    }
  });

  table_ = new QTableWidget(0, 6);
  table_->setObjectName(QStringLiteral("layerTable"));
  table_->setHorizontalHeaderLabels({tr("Block"), tr("Layer"), tr("Config"), tr("Loss"), tr("Rel. error"), tr("Seconds")});
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);  // the layer's name takes the slack
  table_->verticalHeader()->setVisible(false);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);

  loss_plot_ = new QCustomPlot;
  loss_plot_->setObjectName(QStringLiteral("lossPlot"));
  loss_plot_->setMinimumHeight(220);
  auto* layer_rect = new QCPAxisRect(loss_plot_);
  loss_plot_->plotLayout()->addElement(0, 1, layer_rect);
  style_axis_rect(loss_plot_->axisRect(0), tr("step of the current layer"), tr("relative error"), true);
  style_axis_rect(layer_rect, tr("layer (quantized order)"), tr("final relative error"), true);
  loss_plot_->addGraph(loss_plot_->axisRect(0)->axis(QCPAxis::atBottom), loss_plot_->axisRect(0)->axis(QCPAxis::atLeft));
  loss_plot_->graph(0)->setPen(QPen(QColor(31, 119, 180), 1.5));
  loss_plot_->addGraph(layer_rect->axis(QCPAxis::atBottom), layer_rect->axis(QCPAxis::atLeft));
  loss_plot_->graph(1)->setPen(QPen(QColor(214, 39, 40), 1.5));
  loss_plot_->graph(1)->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 4));

  ppl_plot_ = new QCustomPlot;
  ppl_plot_->setObjectName(QStringLiteral("perplexityPlot"));
  ppl_plot_->setMinimumHeight(200);
  ppl_plot_->xAxis->setLabel(tr("blocks quantized"));
  ppl_plot_->yAxis->setLabel(tr("perplexity (lower is better)"));
  ppl_plot_->legend->setVisible(true);
  ppl_plot_->legend->setFont(QFont(font().family(), 8));
  ppl_plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignLeft);

  log_ = new QPlainTextEdit;
  log_->setObjectName(QStringLiteral("runLog"));
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(2000);
  log_->setFont(QFont(QStringLiteral("monospace"), 8));

  auto* top = new QHBoxLayout;
  top->addWidget(progress_, 1);
  top->addWidget(eta_);
  top->addWidget(pause_);
  top->addWidget(cancel_);
  top->addWidget(resume_);
  top->addWidget(start);
  auto* plots = new QSplitter(Qt::Vertical);
  plots->addWidget(loss_plot_);
  plots->addWidget(ppl_plot_);
  auto* middle = new QSplitter(Qt::Horizontal);
  middle->addWidget(table_);
  middle->addWidget(plots);
  middle->setStretchFactor(0, 2);
  middle->setStretchFactor(1, 3);
  auto* main = new QSplitter(Qt::Vertical);
  main->addWidget(middle);
  main->addWidget(log_);
  main->setStretchFactor(0, 4);
  main->setStretchFactor(1, 1);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(title_);
  layout->addLayout(top);
  layout->addWidget(main, 1);

  connect(&controller_, &RunController::events, this, &RunDashboard::onEvents);
  connect(&controller_, &RunController::runEnded, this, &RunDashboard::onEnded);
  connect(&controller_, &RunController::runStarted, this, [this](qint64 id) { showRun(id); });
  connect(&controller_, &RunController::outputLine, this, [this](qint64 id, const QString& line) {
    if (run_id_ == id) log_->appendPlainText(line);
  });
  connect(&context_, &StudioContext::databaseChanged, this, [this] {
    if (run_id_) reloadPerplexity();
  });
  updateButtons();
}

int RunDashboard::layerRows() const { return table_->rowCount(); }
double RunDashboard::progress() const { return progress_->value() / 1000.0; }

void RunDashboard::showRun(store::Id run_id) {
  store::RunDatabase& db = context_.database();
  const std::optional<store::Run> run = db.find_run(run_id);
  if (!run) return;
  const bool same = run_id_ == run_id;
  run_id_ = run_id;
  const std::optional<store::Model> model = db.find_model(run->model_id);
  title_->setText(tr("Run %1: %2, %3 %4 — %5%6")
                      .arg(run_id)
                      .arg(model ? QString::fromStdString(model->name) : tr("(removed model)"),
                           QString(store::name(run->method)).toUpper(), QString::fromStdString(run->config),
                           store::name(run->status),
                           run->error_message.empty() ? QString() : QStringLiteral(": ") + QString::fromStdString(run->error_message)));
  // The block count comes with each live event; for a stored run, the layers recorded say it.
  blocks_ = 0;
  table_->setRowCount(0);
  layer_x_.clear();
  layer_y_.clear();
  step_x_.clear();
  step_y_.clear();
  layers_done_ = 0;
  const std::vector<store::LayerMetric> layers = db.layer_table(run_id);
  for (const store::LayerMetric& metric : layers) addLayerRow(metric);
  if (!layers.empty()) {
    current_layer_ = QString::fromStdString(layers.back().layer);
    for (const store::StepLoss& loss : db.step_losses(run_id, store::LayerRef{layers.back().block, layers.back().layer})) {
      step_x_ << double(step_x_.size());
      step_y_ << loss.loss;
    }
  }
  for (const store::LayerMetric& metric : layers) blocks_ = std::max(blocks_, metric.block + 1);
  if (run->status == store::RunStatus::Finished) {
    progress_->setValue(1000);
    eta_->setText(tr("done"));
  } else {
    progress_->setValue(0);
    eta_->setText(store::name(run->status));
  }
  if (!same) {  // the child's output so far (all attempts); live lines follow through outputLine
    log_->clear();
    const QStringList lines = stored_run_output(context_.databasePath(), run_id);
    if (!lines.isEmpty()) log_->setPlainText(lines.join('\n'));
    log_->moveCursor(QTextCursor::End);
  }
  replotLosses();
  reloadPerplexity();
  updateButtons();
}

void RunDashboard::addLayerRow(const store::LayerMetric& m) {
  const int row = table_->rowCount();
  table_->insertRow(row);
  table_->setItem(row, 0, number_item(m.block, 'f', 0));
  table_->setItem(row, 1, new QTableWidgetItem(QString::fromStdString(m.layer)));
  table_->setItem(row, 2, new QTableWidgetItem(QString::fromStdString(m.config)));
  table_->setItem(row, 3, number_item(m.loss, 'e', 3));
  table_->setItem(row, 4, number_item(m.relative_error, 'e', 3));
  table_->setItem(row, 5, number_item(m.seconds, 'f', 2));
  table_->scrollToBottom();
  layer_x_ << double(layer_x_.size() + 1);
  layer_y_ << m.relative_error;
  ++layers_done_;
}

void RunDashboard::onEvents(qint64 run_id, const QVector<ProgressEvent>& events) {
  if (run_id_ != run_id) showRun(run_id);
  bool losses_changed = false;
  for (const ProgressEvent& e : events) {
    if (e.blocks > 0) blocks_ = e.blocks;
    switch (e.kind) {
      case EventKind::LayerStep: {
        const QString layer = QStringLiteral("block %1 %2").arg(e.block).arg(QString::fromStdString(e.layer));
        if (layer != current_layer_) {
          current_layer_ = layer;
          step_x_.clear();
          step_y_.clear();
        }
        if (e.loss) {
          step_x_ << double(step_x_.size());
          step_y_ << *e.loss;
          losses_changed = true;
        }
        break;
      }
      case EventKind::FinetuneStep: {  // global fine-tuning's KL, plotted like a layer's steps
        if (e.phase != "global" || !e.loss) break;
        const QString what = tr("global fine-tuning, KL");
        if (what != current_layer_) {
          current_layer_ = what;
          step_x_.clear();
          step_y_.clear();
        }
        step_x_ << double(e.step);
        step_y_ << *e.loss;
        losses_changed = true;
        break;
      }
      case EventKind::LayerFinished: {
        store::LayerMetric metric;
        metric.block = e.block;
        metric.layer = e.layer;
        metric.config = context_.database().find_run(run_id)->config;
        metric.loss = step_y_.isEmpty() ? e.loss.value_or(std::nan("")) : step_y_.back();
        metric.relative_error = e.loss.value_or(std::nan(""));
        metric.seconds = e.data.value("seconds", 0.0);
        addLayerRow(metric);
        losses_changed = true;
        break;
      }
      case EventKind::Message:
      case EventKind::RunFailed:
        log_->appendPlainText(QString::fromStdString(e.message));
        break;
      default: break;
    }
    if (e.eta_s) eta_->setText(eta_text(*e.eta_s));
  }
  if (blocks_ > 0) progress_->setValue(std::min(1000, int(1000.0 * layers_done_ / (blocks_ * 7.0))));
  if (losses_changed) replotLosses();
}

void RunDashboard::onEnded(qint64 run_id, store::RunStatus, const QString&) {
  if (run_id_ == run_id) showRun(run_id);
  updateButtons();
}

void RunDashboard::replotLosses() {
  loss_plot_->graph(0)->setData(step_x_, step_y_, true);
  loss_plot_->graph(1)->setData(layer_x_, layer_y_, true);
  loss_plot_->axisRect(0)->axis(QCPAxis::atBottom)->setLabel(
      current_layer_.isEmpty() ? tr("step of the current layer") : tr("step (%1)").arg(current_layer_));
  loss_plot_->graph(0)->rescaleAxes();
  loss_plot_->graph(1)->rescaleAxes();
  for (int i = 0; i < 2; ++i) {
    QCPAxis* y = loss_plot_->axisRect(i)->axis(QCPAxis::atLeft);
    QCPRange range = y->range();
    if (range.lower <= 0 || range.size() <= 0) range = QCPRange(range.lower > 0 ? range.lower : 1e-4, 1);
    y->setRange(range.lower / 1.5, range.upper * 1.5);
    QCPAxis* x = loss_plot_->axisRect(i)->axis(QCPAxis::atBottom);
    x->setRange(x->range().lower - 0.5, x->range().upper + 0.5);
  }
  loss_plot_->replot(QCustomPlot::rpQueuedReplot);
}

void RunDashboard::reloadPerplexity() {
  ppl_plot_->clearGraphs();
  ppl_plot_->clearItems();
  if (!run_id_) return;
  store::RunDatabase& db = context_.database();
  const std::optional<store::Run> run = db.find_run(*run_id_);
  if (!run) return;
  std::vector<store::Evaluation> mine, fp;
  for (const store::Evaluation& e : db.evaluations_of_model(run->model_id)) {
    if (e.run_id == run_id_) mine.push_back(e);
  }
  const double x_end = std::max(blocks_, 1);
  double y_min = 1e300, y_max = 0;
  QString dataset;
  if (!mine.empty()) {
    QCPGraph* graph = ppl_plot_->addGraph();
    graph->setName(tr("this run (%1, %2 tokens)").arg(QString::fromStdString(mine.back().dataset)).arg(mine.back().seqlen));
    graph->setLineStyle(QCPGraph::lsNone);
    graph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, QColor(214, 39, 40), 9));
    for (const store::Evaluation& e : mine) {
      graph->addData(x_end, e.perplexity);
      y_min = std::min(y_min, e.perplexity);
      y_max = std::max(y_max, e.perplexity);
    }
    dataset = QString::fromStdString(mine.back().dataset);
    for (const store::Evaluation& e : db.evaluations_of_model(run->model_id))
      if (!e.run_id && e.dataset == mine.back().dataset && e.seqlen == mine.back().seqlen) fp = {e};
  }
  if (!fp.empty()) {
    QCPGraph* line = ppl_plot_->addGraph();
    line->setName(tr("fp model: %1").arg(fp.back().perplexity, 0, 'f', 2));
    line->setPen(QPen(Qt::darkGray, 1.5, Qt::DashLine));
    line->setData({0.0, x_end}, {fp.back().perplexity, fp.back().perplexity});
    y_min = std::min(y_min, fp.back().perplexity);
    y_max = std::max(y_max, fp.back().perplexity);
  }
  if (y_max > 0) {
    const double pad = std::max(0.1 * (y_max - y_min), 0.05 * y_max);
    ppl_plot_->yAxis->setRange(std::max(0.0, y_min - pad), y_max + pad);
  } else {
    ppl_plot_->yAxis->setRange(0, 1);
  }
  ppl_plot_->xAxis->setRange(0, x_end + 0.5);
  ppl_plot_->legend->setVisible(ppl_plot_->graphCount() > 0);
  if (ppl_plot_->graphCount() == 0) {
    auto* note = new QCPItemText(ppl_plot_);
    note->position->setType(QCPItemPosition::ptAxisRectRatio);
    note->position->setCoords(0.5, 0.5);
    note->setText(run->settings.value("pipeline", nlohmann::json::object()).value("eval_text", std::string()).empty()
                      ? tr("this run has no evaluation text")
                      : tr("perplexity appears when the run has been evaluated"));
    note->setColor(Qt::gray);
  }
  ppl_plot_->replot(QCustomPlot::rpQueuedReplot);
}

void RunDashboard::updateButtons() {
  const bool active = run_id_ && controller_.activeRun() == run_id_;
  std::optional<store::Run> run;
  if (run_id_) run = context_.database().find_run(*run_id_);
  pause_->setEnabled(active);
  cancel_->setEnabled(active);
  resume_->setEnabled(!controller_.isRunning() && run &&
                      (run->status == store::RunStatus::Paused || run->status == store::RunStatus::Failed ||
                       run->status == store::RunStatus::Cancelled || run->status == store::RunStatus::Queued));
}

}  // namespace aqlm::studio
