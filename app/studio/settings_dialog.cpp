#include "app/studio/settings_dialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QThread>

namespace aqlm::studio {

SettingsDialog::SettingsDialog(const StudioSettings& settings, const QList<QPair<QString, QString>>& gpus, QWidget* parent)
    : QDialog(parent) {
  setWindowTitle(tr("Settings"));
  setObjectName(QStringLiteral("settingsDialog"));
  auto* form = new QFormLayout;
  models_folder_ = new QLineEdit(settings.modelsFolder);
  models_folder_->setObjectName(QStringLiteral("modelsFolder"));
  auto* browse = new QPushButton(tr("Browse…"));
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Models folder"), models_folder_->text());
    if (!dir.isEmpty()) models_folder_->setText(dir);
  });
  auto* folder_row = new QHBoxLayout;
  folder_row->addWidget(models_folder_);
  folder_row->addWidget(browse);
  form->addRow(tr("Models folder:"), folder_row);

  device_ = new QComboBox;
  device_->setObjectName(QStringLiteral("defaultDevice"));
  device_->addItem(tr("CPU"), QStringLiteral("cpu"));
  for (const auto& [id, label] : gpus) device_->addItem(label, id);
  const int index = device_->findData(settings.defaultDevice);
  device_->setCurrentIndex(index >= 0 ? index : 0);
  form->addRow(tr("Default device:"), device_);

  threads_ = new QSpinBox;
  threads_->setObjectName(QStringLiteral("threads"));
  threads_->setRange(0, 1024);
  threads_->setSpecialValueText(tr("all cores (%1)").arg(QThread::idealThreadCount()));
  threads_->setValue(settings.threads);
  form->addRow(tr("CPU threads:"), threads_);

  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
  connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  form->addRow(buttons);
  setLayout(form);
  resize(560, sizeHint().height());
}

StudioSettings SettingsDialog::settings() const {
  StudioSettings s;
  s.modelsFolder = models_folder_->text().trimmed();
  s.defaultDevice = device_->currentData().toString();
  s.threads = threads_->value();
  return s;
}

}  // namespace aqlm::studio
