#include "app/studio/run_controller.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QTextStream>

#include <csignal>

#include "app/studio/studio_context.h"
#include "core/common/error.h"

namespace aqlm::studio {

namespace {

std::filesystem::path attempt_file(const std::filesystem::path& log_dir, int attempt, const char* extension) {
  return log_dir / ("attempt-" + std::to_string(attempt) + extension);
}

}  // namespace

RunController::RunController(StudioContext& context, QObject* parent) : QObject(parent), context_(context) {
  qRegisterMetaType<aqlm::ProgressEvent>();
  qRegisterMetaType<QVector<aqlm::ProgressEvent>>();
  qRegisterMetaType<aqlm::store::RunStatus>();
  exit_watchdog_.setSingleShot(true);
  connect(&exit_watchdog_, &QTimer::timeout, this, &RunController::onExitOverdue);
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
  while (std::filesystem::exists(attempt_file(log_dir, attempt, ".jsonl"))) ++attempt;
  const QString log_file = QString::fromStdString(attempt_file(log_dir, attempt, ".jsonl").string());
  output_log_.setFileName(QString::fromStdString(attempt_file(log_dir, attempt, ".log").string()));
  if (!output_log_.open(QIODevice::WriteOnly | QIODevice::Text))
    context_.warn(tr("run %1: the child's output is not kept: %2").arg(run_id).arg(output_log_.errorString()));

  db.set_run_status(run_id, store::RunStatus::Running);
  active_ = run_id;
  request_ = StopRequest::None;
  exit_code_ = 0;
  crashed_ = false;
  stderr_tail_.clear();
  stderr_partial_.clear();

  monitor_ = new RunMonitor(run_id, log_file);
  monitor_->moveToThread(&monitor_thread_);
  connect(monitor_, &RunMonitor::events, this, &RunController::events);
  connect(monitor_, &RunMonitor::events, this, &RunController::watchForTheEnd);
  connect(monitor_, &RunMonitor::drained, this, &RunController::onDrained);
  connect(monitor_, &RunMonitor::problem, this, [this](const QString& message) { context_.warn(message); });
  QMetaObject::invokeMethod(monitor_, &RunMonitor::start, Qt::QueuedConnection);

  process_ = new QProcess(this);
  process_->setProgram(cli);
  process_->setArguments(quantize_arguments(spec, log_file, QString::fromStdString(context_.databasePath().string()), run_id,
                                            resume || run->started.has_value()));
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

void RunController::watchForTheEnd(qint64, const QVector<ProgressEvent>& events) {
  if (!process_ || exit_watchdog_.isActive()) return;
  for (const ProgressEvent& e : events)
    if (e.kind == EventKind::RunFinished || e.kind == EventKind::RunFailed || e.kind == EventKind::RunCancelled) {
      exit_watchdog_.start(kExitGraceMs);
      return;
    }
}

void RunController::onExitOverdue() {
  if (!process_ || process_->state() == QProcess::NotRunning) return;
  context_.warn(tr("run %1: aqlm-cli reported the end of its run %2 s ago but has not exited; stopping it")
                    .arg(active_.value_or(0))
                    .arg(kExitGraceMs / 1000));
  process_->kill();
}

void RunController::readStderr() {
  if (!process_) return;
  stderr_partial_ += QString::fromUtf8(process_->readAllStandardError());
  // On a pipe the CLI writes whole lines (a line per finished layer and block, messages,
  // errors); keep the last few for the failure message.
  qsizetype newline;
  while ((newline = stderr_partial_.indexOf('\n')) >= 0) {
    const QString line = stderr_partial_.left(newline);
    stderr_partial_.remove(0, newline + 1);
    stderr_tail_ += line + '\n';
    if (stderr_tail_.size() > 4000) stderr_tail_ = stderr_tail_.right(2000);
    if (output_log_.isOpen()) {
      output_log_.write(line.toUtf8() + '\n');
      output_log_.flush();
    }
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
  const bool interrupted = request_ != StopRequest::None;
  request_ = StopRequest::Cancel;
  context_.info(QStringLiteral("run %1: cancelling").arg(*active_));
  if (!interrupted) sendInterrupt();
}

void RunController::onProcessFinished(int exit_code, QProcess::ExitStatus status) {
  if (!monitor_ || !process_) return;
  readStderr();
  if (!stderr_partial_.isEmpty()) {
    stderr_tail_ += stderr_partial_;
    if (output_log_.isOpen()) output_log_.write(stderr_partial_.toUtf8());
    if (active_) Q_EMIT outputLine(*active_, stderr_partial_);
    stderr_partial_.clear();
  }
  output_log_.close();
  exit_watchdog_.stop();
  exit_code_ = exit_code;
  crashed_ = status == QProcess::CrashExit;
  QMetaObject::invokeMethod(monitor_, &RunMonitor::finish, Qt::QueuedConnection);
  process_->deleteLater();
  process_ = nullptr;
}

std::pair<store::RunStatus, QString> RunController::settle(store::Id run_id) {
  store::RunDatabase& db = context_.database();
  const std::optional<store::Run> run = db.find_run(run_id);
  if (!run) return {store::RunStatus::Failed, tr("the run was removed from the database while it ran")};
  const store::RunStatus recorded = run->status;
  if (recorded == store::RunStatus::Finished) return {recorded, QString()};
  // The child marks a stopped run paused; the user may have asked to cancel it instead.
  if (request_ == StopRequest::Cancel) {
    if (!store::is_over(recorded)) db.set_run_status(run_id, store::RunStatus::Cancelled);
    return {store::RunStatus::Cancelled, QString()};
  }
  if (recorded == store::RunStatus::Failed) return {recorded, QString::fromStdString(run->error_message)};
  if (recorded == store::RunStatus::Paused) return {recorded, QString()};
  if (request_ == StopRequest::Pause && (crashed_ || exit_code_ == 130)) {  // stopped before it could say so
    db.set_run_status(run_id, store::RunStatus::Paused);
    return {store::RunStatus::Paused, QString()};
  }
  // Still "running": the child failed before its job started (bad settings, an unreadable
  // database) or was killed. Its last error line says why.
  QString message = stderr_tail_.trimmed().section('\n', -1).remove(QStringLiteral("aqlm-cli: error: "));
  if (message.isEmpty())
    message = crashed_ ? tr("aqlm-cli stopped unexpectedly (it crashed or was killed)")
                       : tr("aqlm-cli ended with exit code %1 without recording how the run ended").arg(exit_code_);
  db.set_run_status(run_id, store::RunStatus::Failed, message.toStdString());
  return {store::RunStatus::Failed, message};
}

void RunController::onDrained(qint64 run_id) {
  if (monitor_) {
    monitor_->deleteLater();
    monitor_ = nullptr;
  }
  store::RunStatus status = store::RunStatus::Failed;
  QString message;
  try {
    std::tie(status, message) = settle(run_id);
  } catch (const Error& error) {
    message = QString::fromStdString(error.what());
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
  // The monitor reads the rest of the log on its thread and queues drained() to this object:
  // deliver it here, since the window (and its event loop) is going away.
  QElapsedTimer waited;
  waited.start();
  while (active_ && waited.elapsed() < 10000) {
    QCoreApplication::sendPostedEvents(this, QEvent::MetaCall);
    if (active_) QThread::msleep(5);
  }
  shutting_down_ = false;
}

QStringList stored_run_output(const std::filesystem::path& database_path, store::Id run_id, int max_lines) {
  const std::filesystem::path log_dir = run_log_dir(database_path, run_id);
  QStringList lines;
  for (int attempt = 1; std::filesystem::exists(attempt_file(log_dir, attempt, ".jsonl")); ++attempt) {
    QFile file(QString::fromStdString(attempt_file(log_dir, attempt, ".log").string()));
    if (!file.open(QIODevice::ReadOnly | QIODevice::Text)) continue;
    if (attempt > 1) lines << QObject::tr("— attempt %1 —").arg(attempt);
    QTextStream in(&file);
    while (!in.atEnd()) lines << in.readLine();
  }
  if (lines.size() > max_lines) lines = lines.mid(lines.size() - max_lines);
  return lines;
}

}  // namespace aqlm::studio
