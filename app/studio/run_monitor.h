#pragma once
// The worker side of a running quantization: on its own thread it tails the attempt's
// JSON-lines log (every 100 ms), records the events into the database through its own
// connection, and forwards them to the UI as queued signals. When the child process ends it
// reads the last lines and decides how the attempt ended (finished, paused, cancelled,
// failed), which it writes to the database before telling the UI.
#include <QObject>
#include <QString>
#include <QTimer>
#include <QVector>

#include <memory>
#include <optional>

#include "app/studio/run_recorder.h"
#include "core/jobs/progress_event.h"
#include "core/store/run_database.h"

namespace aqlm::studio {

// What the user asked of a running attempt before it ended.
enum class StopRequest { None, Pause, Cancel };

class RunMonitor : public QObject {
  Q_OBJECT
 public:
  RunMonitor(std::filesystem::path database_path, store::Id run_id, std::string config, QString log_file);
  ~RunMonitor() override;

 public Q_SLOTS:
  void start();  // opens the database on this thread and starts polling
  // The child process ended: read what is left, settle the run's status, emit ended().
  void processEnded(int exit_code, bool crashed, aqlm::studio::StopRequest request, const QString& stderr_tail);

 Q_SIGNALS:
  void events(qint64 run_id, const QVector<aqlm::ProgressEvent>& events);
  void ended(qint64 run_id, aqlm::store::RunStatus status, const QString& message);
  void problem(const QString& message);  // a log line that does not parse, a database error

 private:
  void poll();

  std::filesystem::path database_path_;
  store::Id run_id_;
  std::string config_;
  QString log_file_;
  std::optional<store::RunDatabase> database_;
  std::unique_ptr<RunRecorder> recorder_;
  std::unique_ptr<ProgressLogReader> reader_;
  QTimer* timer_ = nullptr;
  bool broken_ = false;  // a database error stopped recording; the attempt is marked failed at the end
  QString broken_message_;
};

}  // namespace aqlm::studio

Q_DECLARE_METATYPE(aqlm::ProgressEvent)
Q_DECLARE_METATYPE(aqlm::studio::StopRequest)
Q_DECLARE_METATYPE(aqlm::store::RunStatus)
