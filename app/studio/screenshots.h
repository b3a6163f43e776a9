#pragma once
// `aqlm-studio --screenshots DIR --screenshot-model MODEL --screenshot-text FILE
// [--screenshot-budget-model PATH]`: makes real runs of a small model (AQLM at two budgets, GPTQ
// and RTN, evaluated on FILE), chats with the best AQLM run's output, then grabs the main window
// on each view and the wizard's budget and method pages into DIR (scripts/render_screenshots.sh).
// The budget page shows `budget_model` when given (a real-sized model, where the presets differ).
#include <QString>

namespace aqlm::studio {

class MainWindow;

int render_screenshots(MainWindow& window, const QString& dir, const QString& model, const QString& text,
                       const QString& budget_model = QString());

}  // namespace aqlm::studio
