#pragma once
// The worker side of a running quantization: on its own thread it tails the attempt's
// JSON-lines log (every 100 ms) and forwards the events to the UI as queued signals, for the
// live dashboard. It writes nothing: the child records the run in the database itself
// (aqlm-cli quantize --db --run-id, through core's RunDatabaseSink).
#include <QObject>
#include <QString>
#include <QTimer>
#include <QVector>

#include <memory>

#include "core/jobs/progress_event.h"
#include "core/store/records.h"

namespace aqlm::studio {

class RunMonitor : public QObject {
  Q_OBJECT
 public:
  RunMonitor(store::Id run_id, QString log_file);
  ~RunMonitor() override;

 public Q_SLOTS:
  void start();  // starts polling
  // The child process ended: reads what is left of the log, then emits drained().
  void finish();

 Q_SIGNALS:
  void events(qint64 run_id, const QVector<aqlm::ProgressEvent>& events);
  void drained(qint64 run_id);
  void problem(const QString& message);  // a log line that does not parse

 private:
  void poll();

  store::Id run_id_;
  std::unique_ptr<ProgressLogReader> reader_;
  QTimer* timer_ = nullptr;
};

}  // namespace aqlm::studio

Q_DECLARE_METATYPE(aqlm::ProgressEvent)
Q_DECLARE_METATYPE(aqlm::store::RunStatus)
