#pragma once
// Starts, pauses, cancels and resumes quantization runs. A run executes as a child
// `aqlm-cli quantize ... --log-json FILE` process; a RunMonitor on a worker thread reads the
// log, records it in the database and forwards the events here as queued signals. One run at a
// time (the pipeline uses every core). Pause and closing the studio ask the child to stop at
// its next step (SIGINT), which leaves a checkpoint that Resume (--resume) continues.
#include <QObject>
#include <QPointer>
#include <QProcess>
#include <QThread>

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

  // Creates the run row (queued) and starts it. Returns its id; Error when another run is in
  // progress or aqlm-cli cannot be found (the run is then marked failed with that reason).
  store::Id startNew(store::Id model_id, const RunSpec& spec, std::optional<double> predicted_bits);
  // Continues a paused, failed or cancelled run from its checkpoint.
  void resume(store::Id run_id);
  void pause();
  void cancel();

  std::optional<store::Id> activeRun() const { return active_; }
  bool isRunning() const { return active_.has_value(); }

  // Runs left "running" by a studio that did not close properly become "paused" (resumable).
  void recoverInterruptedRuns();
  // Pauses the active run and waits up to `timeout_ms` for the child to stop and the monitor
  // to record it; kills the child after that. Called when the studio closes.
  void shutdown(int timeout_ms = 60000);

 Q_SIGNALS:
  void runStarted(qint64 run_id);
  void events(qint64 run_id, const QVector<aqlm::ProgressEvent>& events);
  void runEnded(qint64 run_id, aqlm::store::RunStatus status, const QString& message);
  void outputLine(qint64 run_id, const QString& line);  // the child's stderr, line by line

 private:
  void launch(store::Id run_id, bool resume);
  void onProcessFinished(int exit_code, QProcess::ExitStatus status);
  void onMonitorEnded(qint64 run_id, store::RunStatus status, const QString& message);
  void sendInterrupt();
  void readStderr();

  StudioContext& context_;
  std::optional<store::Id> active_;
  QProcess* process_ = nullptr;
  QThread monitor_thread_;
  RunMonitor* monitor_ = nullptr;
  StopRequest request_ = StopRequest::None;
  bool shutting_down_ = false;
  QString stderr_tail_;
  QString stderr_partial_;
};

}  // namespace aqlm::studio
