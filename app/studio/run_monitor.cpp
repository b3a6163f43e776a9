#include "app/studio/run_monitor.h"

#include "core/common/error.h"

namespace aqlm::studio {

RunMonitor::RunMonitor(std::filesystem::path database_path, store::Id run_id, std::string config, QString log_file)
    : database_path_(std::move(database_path)), run_id_(run_id), config_(std::move(config)), log_file_(std::move(log_file)) {}

RunMonitor::~RunMonitor() = default;

void RunMonitor::start() {
  try {
    database_.emplace(store::RunDatabase::open(database_path_));
    recorder_ = std::make_unique<RunRecorder>(*database_, run_id_, config_);
  } catch (const Error& error) {
    broken_ = true;
    broken_message_ = QString::fromStdString(error.what());
    Q_EMIT problem(broken_message_);
  }
  reader_ = std::make_unique<ProgressLogReader>(log_file_.toStdString());
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
    // A damaged line: say so once and keep going with the lines after it.
    Q_EMIT problem(QString::fromStdString(error.what()));
    return;
  }
  if (batch.empty()) return;
  if (!broken_) {
    try {
      recorder_->record(batch);
    } catch (const Error& error) {
      broken_ = true;
      broken_message_ = QString::fromStdString(error.what());
      Q_EMIT problem(broken_message_);
    }
  }
  Q_EMIT events(run_id_, QVector<ProgressEvent>(batch.begin(), batch.end()));
}

void RunMonitor::processEnded(int exit_code, bool crashed, StopRequest request, const QString& stderr_tail) {
  if (timer_) timer_->stop();
  if (reader_) poll();
  store::RunStatus status = store::RunStatus::Failed;
  QString message;
  const std::optional<EventKind> ending = recorder_ ? recorder_->ending() : std::nullopt;
  if (ending == EventKind::RunFinished && exit_code == 0 && !crashed && !broken_) {
    status = store::RunStatus::Finished;
  } else if (request != StopRequest::None && (ending == EventKind::RunCancelled || exit_code == 130 || crashed)) {
    status = request == StopRequest::Pause ? store::RunStatus::Paused : store::RunStatus::Cancelled;
  } else if (broken_) {
    message = broken_message_;
  } else if (recorder_ && !recorder_->failure_message().empty()) {
    message = QString::fromStdString(recorder_->failure_message());
  } else if (!stderr_tail.trimmed().isEmpty()) {
    message = stderr_tail.trimmed().section('\n', -1).remove(QStringLiteral("aqlm-cli: error: "));
  } else {
    message = crashed ? QStringLiteral("aqlm-cli stopped unexpectedly (it crashed or was killed)")
                      : QStringLiteral("aqlm-cli ended with exit code %1 without saying why").arg(exit_code);
  }
  if (status != store::RunStatus::Finished && database_) {
    try {
      database_->set_run_status(run_id_, status, status == store::RunStatus::Failed ? message.toStdString() : std::string());
    } catch (const Error& error) {
      Q_EMIT problem(QString::fromStdString(error.what()));
    }
  }
  Q_EMIT ended(run_id_, status, message);
}

}  // namespace aqlm::studio
