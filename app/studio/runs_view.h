#pragma once
// The Runs tab: every run of every model with its settings and results, and what one can do
// with a run: open it in the dashboard, resume it, chat with its output, delete it.
#include <QWidget>

#include <optional>

#include "app/studio/run_controller.h"
#include "app/studio/studio_context.h"

class QTableWidget;
class QPushButton;

namespace aqlm::studio {

class RunsView : public QWidget {
  Q_OBJECT
 public:
  RunsView(StudioContext& context, RunController& controller, QWidget* parent = nullptr);
  void reload();
  std::optional<store::Id> selectedRun() const;
  void selectRun(store::Id run_id);
  int rowCount() const;
  QString cellText(int row, const QString& column) const;  // for tests: by header label

 Q_SIGNALS:
  void openRun(qint64 run_id);
  void chatWith(const QString& model_path);

 private:
  void updateButtons();
  StudioContext& context_;
  RunController& controller_;
  QTableWidget* table_;
  QPushButton* open_;
  QPushButton* resume_;
  QPushButton* chat_;
  QPushButton* remove_;
};

}  // namespace aqlm::studio
