#pragma once
// Preferences: the models folder, the default device and the engine's CPU threads.
#include <QDialog>

#include "app/studio/studio_context.h"

class QComboBox;
class QLineEdit;
class QSpinBox;

namespace aqlm::studio {

class SettingsDialog : public QDialog {
  Q_OBJECT
 public:
  // `gpus`: the devices besides the CPU that can be chosen ("cuda:0" ...), with labels.
  SettingsDialog(const StudioSettings& settings, const QList<QPair<QString, QString>>& gpus, QWidget* parent = nullptr);
  StudioSettings settings() const;

 private:
  QLineEdit* models_folder_;
  QComboBox* device_;
  QSpinBox* threads_;
};

}  // namespace aqlm::studio
