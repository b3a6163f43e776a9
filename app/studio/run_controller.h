#pragma once
// Starts, pauses, cancels and resumes quantization runs. A run executes as a child
// `aqlm-cli quantize ... --log-json FILE --db DATABASE --run-id ID` process: the child records
// the run in the database itself (the one recording path, shared with CLI runs), while a
// RunMonitor on a worker thread tails the JSON log for the live dashboard and the child's
// stderr lines go to the dashboard's log and to runs/<id>/attempt-N.log. One run at a time
// (the pipeline uses every core). Pause and closing the studio ask the child to stop at its
// next step (SIGINT), which leaves a checkpoint that Resume (--resume) continues.
#include <QFile>
#include <QObject>
#include <QProcess>
#include <QThread>
#include <QTimer>

#include <optional>

#include "app/studio/run_monitor.h"
#include "app/studio/run_spec.h"

namespace aqlm::studio {

class StudioContext;

class RunController : public QObject {
  Q_OBJECT
 public:
  explicit RunController(StudioContext& context, QObject* parent = nullptr);
  ~RunController() override;  // pauses a running run and waits for it (see shutdown)

  // Creates the run row and starts it. Returns its id; Error when another run is in progress
  // or aqlm-cli cannot be found (the run is then marked failed with that reason).
  store::Id startNew(store::Id model_id, const RunSpec& spec, std::optional<double> predicted_bits);
  // Continues a paused, failed or cancelled run from its checkpoint.
  void resume(store::Id run_id);
  void pause();
  void cancel();

  std::optional<store::Id> activeRun() const { return active_; }
  bool isRunning() const { return active_.has_value(); }

  // Runs left "running" by a studio that did not close properly become "paused" (resumable).
  void recoverInterruptedRuns();
  // Pauses the active run and waits up to `timeout_ms` for the child to stop and its log to be
  // read; kills the child after that. Called when the studio closes.
  void shutdown(int timeout_ms = 60000);

 Q_SIGNALS:
  void runStarted(qint64 run_id);
  void events(qint64 run_id, const QVector<aqlm::ProgressEvent>& events);
  void runEnded(qint64 run_id, aqlm::store::RunStatus status, const QString& message);
  void outputLine(qint64 run_id, const QString& line);  // the child's stderr, line by line

 private:
  enum class StopRequest { None, Pause, Cancel };
  void launch(store::Id run_id, bool resume);
  void onProcessFinished(int exit_code, QProcess::ExitStatus status);
  void onDrained(qint64 run_id);
  // The child has logged how its run ended (finished, failed, cancelled) and everything is in
  // the database: if it has not exited kExitGraceMs later (stuck in its exit), it is killed, so
  // a hung process cannot hold the studio's one run slot forever.
  void watchForTheEnd(qint64 run_id, const QVector<ProgressEvent>& events);
  void onExitOverdue();
  static constexpr int kExitGraceMs = 10000;
  // How the attempt ended, from what the child recorded and what the user asked; writes the
  // status when the child could not (killed, or failed before its job started).
  std::pair<store::RunStatus, QString> settle(store::Id run_id);
  void sendInterrupt();
  void readStderr();

  StudioContext& context_;
  std::optional<store::Id> active_;
  QProcess* process_ = nullptr;
  QThread monitor_thread_;
  RunMonitor* monitor_ = nullptr;
  StopRequest request_ = StopRequest::None;
  bool shutting_down_ = false;
  int exit_code_ = 0;
  bool crashed_ = false;
  QString stderr_tail_;
  QString stderr_partial_;
  QTimer exit_watchdog_;
  QFile output_log_;  // runs/<id>/attempt-N.log: the child's stderr, for the dashboard later
};

// The child's stderr lines of every attempt of a run (runs/<id>/attempt-N.log, oldest first,
// each attempt after the first under a "— attempt N —" line), at most the last `max_lines`.
QStringList stored_run_output(const std::filesystem::path& database_path, store::Id run_id, int max_lines = 2000);

}  // namespace aqlm::studio
