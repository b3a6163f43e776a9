#include "app/studio/run_controller.h"

#include <QCoreApplication>
#include <QDir>
#include <QElapsedTimer>

#include <csignal>

#include "app/studio/studio_context.h"
#include "core/common/error.h"

namespace aqlm::studio {

RunController::RunController(StudioContext& context, QObject* parent) : QObject(parent), context_(context) {
  qRegisterMetaType<aqlm::ProgressEvent>();
  qRegisterMetaType<QVector<aqlm::ProgressEvent>>();
  qRegisterMetaType<aqlm::studio::StopRequest>();
  qRegisterMetaType<aqlm::store::RunStatus>();
  monitor_thread_.setObjectName(QStringLiteral("run monitor"));
  monitor_thread_.start();
}

RunController::~RunController() {
  shutdown();
  monitor_thread_.quit();
  monitor_thread_.wait();
}

store::Id RunController::startNew(store::Id model_id, const RunSpec& spec, std::optional<double> predicted_bits) {
  AQLM_CHECK(!active_, "run ", active_.value_or(0), " is still in progress: pause or cancel it before starting another");
  store::RunRequest request;
  request.model_id = model_id;
  request.method = spec.method();
  request.config = spec.config_name();
  request.settings = spec.to_json();
  request.output_dir = spec.pipeline.out_dir;
  request.checkpoint_dir = spec.pipeline.resolved_checkpoint_dir();
  request.bits_predicted = predicted_bits;
  const store::Id run_id = context_.database().create_run(request);
  context_.info(QStringLiteral("run %1 created: %2 %3 of %4").arg(run_id).arg(store::name(request.method), request.config.c_str(),
                                                                     spec.pipeline.model.c_str()));
  launch(run_id, false);
  return run_id;
}

void RunController::resume(store::Id run_id) {
  AQLM_CHECK(!active_, "run ", active_.value_or(0), " is still in progress: pause or cancel it before resuming another");
  launch(run_id, true);
}

void RunController::launch(store::Id run_id, bool resume) {
  store::RunDatabase& db = context_.database();
  const std::optional<store::Run> run = db.find_run(run_id);
  AQLM_CHECK(run, "run ", run_id, " is not in the database");
  const RunSpec spec = RunSpec::from_json(run->settings);
  const QString cli = locate_cli();
  if (cli.isEmpty()) {
    const std::string reason = "aqlm-cli was not found beside the studio (" +
                               QCoreApplication::applicationDirPath().toStdString() + ") nor in $AQLM_CLI";
    if (!store::is_over(run->status)) db.set_run_status(run_id, store::RunStatus::Failed, reason);
    fail(reason);
  }
  const std::filesystem::path log_dir = run_log_dir(context_.databasePath(), run_id);
  std::filesystem::create_directories(log_dir);
  int attempt = 1;
  while (std::filesystem::exists(log_dir / ("attempt-" + std::to_string(attempt) + ".jsonl"))) ++attempt;
  const QString log_file = QString::fromStdString((log_dir / ("attempt-" + std::to_string(attempt) + ".jsonl")).string());

  db.set_run_status(run_id, store::RunStatus::Running);
  active_ = run_id;
  request_ = StopRequest::None;
  stderr_tail_.clear();
  stderr_partial_.clear();

  monitor_ = new RunMonitor(context_.databasePath(), run_id, run->config, log_file);
  monitor_->moveToThread(&monitor_thread_);
  connect(monitor_, &RunMonitor::events, this, &RunController::events);
  connect(monitor_, &RunMonitor::ended, this, &RunController::onMonitorEnded);
  connect(monitor_, &RunMonitor::problem, this, [this](const QString& message) { context_.warn(message); });
  QMetaObject::invokeMethod(monitor_, &RunMonitor::start, Qt::QueuedConnection);

  process_ = new QProcess(this);
  process_->setProgram(cli);
  process_->setArguments(quantize_arguments(spec, log_file, resume || run->started.has_value()));
  process_->setProcessChannelMode(QProcess::SeparateChannels);
  connect(process_, &QProcess::readyReadStandardError, this, &RunController::readStderr);
  connect(process_, &QProcess::finished, this, &RunController::onProcessFinished);
  connect(process_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError error) {
    if (error != QProcess::FailedToStart) return;
    stderr_tail_ += QStringLiteral("aqlm-cli: error: cannot start %1: %2\n").arg(process_->program(), process_->errorString());
    onProcessFinished(-1, QProcess::CrashExit);
  });
  context_.info(QStringLiteral("run %1: %2 %3").arg(run_id).arg(cli, process_->arguments().join(' ')));
  process_->start();
  Q_EMIT runStarted(run_id);
}

void RunController::readStderr() {
  if (!process_) return;
  stderr_partial_ += QString::fromUtf8(process_->readAllStandardError());
  // Progress lines on a pipe are whole lines; keep the last few for the failure message.
  qsizetype newline;
  while ((newline = stderr_partial_.indexOf('\n')) >= 0) {
    const QString line = stderr_partial_.left(newline);
    stderr_partial_.remove(0, newline + 1);
    stderr_tail_ += line + '\n';
    if (stderr_tail_.size() > 4000) stderr_tail_ = stderr_tail_.right(2000);
    if (active_) Q_EMIT outputLine(*active_, line);
  }
}

void RunController::sendInterrupt() {
  if (process_ && process_->state() == QProcess::Running) ::kill(pid_t(process_->processId()), SIGINT);
}

void RunController::pause() {
  if (!active_ || request_ != StopRequest::None) return;
  request_ = StopRequest::Pause;
  context_.info(QStringLiteral("run %1: pausing at the next step").arg(*active_));
  sendInterrupt();
}

void RunController::cancel() {
  if (!active_) return;
  request_ = StopRequest::Cancel;
  context_.info(QStringLiteral("run %1: cancelling").arg(*active_));
  sendInterrupt();
}

void RunController::onProcessFinished(int exit_code, QProcess::ExitStatus status) {
  if (!monitor_ || !process_) return;
  readStderr();
  if (!stderr_partial_.isEmpty()) stderr_tail_ += stderr_partial_;
  const bool crashed = status == QProcess::CrashExit;
  QMetaObject::invokeMethod(monitor_, "processEnded", Qt::QueuedConnection, Q_ARG(int, exit_code), Q_ARG(bool, crashed),
                            Q_ARG(aqlm::studio::StopRequest, request_), Q_ARG(QString, stderr_tail_));
  process_->deleteLater();
  process_ = nullptr;
}

void RunController::onMonitorEnded(qint64 run_id, store::RunStatus status, const QString& message) {
  if (monitor_) {
    monitor_->deleteLater();
    monitor_ = nullptr;
  }
  active_.reset();
  request_ = StopRequest::None;
  context_.info(QStringLiteral("run %1 %2%3").arg(run_id).arg(store::name(status), message.isEmpty() ? QString() : ": " + message));
  context_.notifyDatabaseChanged();
  Q_EMIT runEnded(run_id, status, message);
  if (status == store::RunStatus::Failed && !shutting_down_)
    context_.reportError(QStringLiteral("Run %1 failed").arg(run_id), message);
}

void RunController::recoverInterruptedRuns() {
  if (active_) return;
  store::RunDatabase& db = context_.database();
  for (const store::Run& run : db.runs_with_status(store::RunStatus::Running)) {
    db.set_run_status(run.id, store::RunStatus::Paused);
    context_.warn(QStringLiteral("run %1 was interrupted when the studio last closed; it is paused and can be resumed")
                      .arg(run.id));
  }
}

void RunController::shutdown(int timeout_ms) {
  if (!active_) return;
  shutting_down_ = true;
  if (process_) {
    if (request_ == StopRequest::None) request_ = StopRequest::Pause;
    sendInterrupt();
    if (!process_->waitForFinished(timeout_ms)) {
      process_->kill();
      process_->waitForFinished(5000);
    }
  }
  // The monitor records the end on its thread and queues ended() to this object: deliver it
  // here, since the window (and its event loop) is going away.
  QElapsedTimer waited;
  waited.start();
  while (active_ && waited.elapsed() < 10000) {
    QCoreApplication::sendPostedEvents(this, QEvent::MetaCall);
    if (active_) QThread::msleep(5);
  }
  shutting_down_ = false;
}

}  // namespace aqlm::studio
