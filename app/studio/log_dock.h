#pragma once
// The log dock: every line the studio logs (StudioContext::log), with time and level.
#include <QDockWidget>

#include "app/studio/studio_context.h"

class QPlainTextEdit;

namespace aqlm::studio {

class LogDock : public QDockWidget {
  Q_OBJECT
 public:
  LogDock(StudioContext& context, QWidget* parent = nullptr);
  QString text() const;

 private:
  void append(LogLevel level, const QString& message);
  QPlainTextEdit* view_;
};

}  // namespace aqlm::studio
