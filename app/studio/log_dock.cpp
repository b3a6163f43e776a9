#include "app/studio/log_dock.h"

#include <QPlainTextEdit>
#include <QTime>

namespace aqlm::studio {

LogDock::LogDock(StudioContext& context, QWidget* parent) : QDockWidget(tr("Log"), parent) {
  setObjectName(QStringLiteral("logDock"));
  view_ = new QPlainTextEdit(this);
  view_->setReadOnly(true);
  view_->setMaximumBlockCount(5000);
  view_->setFont(QFont(QStringLiteral("monospace"), 9));
  setWidget(view_);
  connect(&context, &StudioContext::logMessage, this, &LogDock::append);
}

QString LogDock::text() const { return view_->toPlainText(); }

void LogDock::append(LogLevel level, const QString& message) {
  static const char* const labels[] = {"", "warning: ", "error: "};
  view_->appendPlainText(QTime::currentTime().toString(QStringLiteral("HH:mm:ss  ")) + labels[int(level)] + message);
}

}  // namespace aqlm::studio
