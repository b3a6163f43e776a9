#include "app/studio/run_monitor.h"

#include "core/common/error.h"

namespace aqlm::studio {

RunMonitor::RunMonitor(store::Id run_id, QString log_file)
    : run_id_(run_id), reader_(std::make_unique<ProgressLogReader>(log_file.toStdString())) {}

RunMonitor::~RunMonitor() = default;

void RunMonitor::start() {
  timer_ = new QTimer(this);
  timer_->setInterval(100);
  connect(timer_, &QTimer::timeout, this, &RunMonitor::poll);
  timer_->start();
}

void RunMonitor::poll() {
  std::vector<ProgressEvent> batch;
  try {
    batch = reader_->read_new();
  } catch (const Error& error) {
    // A damaged line: say so and keep going with the lines after it.
    Q_EMIT problem(QString::fromStdString(error.what()));
    return;
  }
  if (!batch.empty()) Q_EMIT events(run_id_, QVector<ProgressEvent>(batch.begin(), batch.end()));
}

void RunMonitor::finish() {
  if (timer_) timer_->stop();
  poll();
  Q_EMIT drained(run_id_);
}

}  // namespace aqlm::studio
