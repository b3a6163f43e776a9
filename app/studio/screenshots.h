#pragma once
// `aqlm-studio --screenshots DIR --screenshot-model MODEL --screenshot-text FILE`: makes real
// runs of a small model (AQLM at two budgets, GPTQ and RTN, evaluated on FILE), then grabs the
// main window on each view and the wizard's budget page into DIR (scripts/render_screenshots.sh).
#include <QString>

namespace aqlm::studio {

class MainWindow;

int render_screenshots(MainWindow& window, const QString& dir, const QString& model, const QString& text);

}  // namespace aqlm::studio
