#pragma once
// The pages of the CompressWizard, one .cpp each (wizard_*_page.cpp).
#include <QFutureWatcher>
#include <QWizardPage>

#include "app/studio/budget.h"
#include "app/studio/compress_wizard.h"

class QButtonGroup;
class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QRadioButton;
class QSpinBox;

namespace aqlm::studio {

class ModelPage : public QWizardPage {
  Q_OBJECT
 public:
  explicit ModelPage(CompressWizard& wizard);
  void initializePage() override;
  bool isComplete() const override;
  void setPath(const QString& path);
  QString statusText() const;

 private:
  void inspect(const QString& path);
  CompressWizard& wizard_;
  QComboBox* library_;
  QLineEdit* path_;
  QLabel* status_;
  QFutureWatcher<InspectionResult>* watcher_;
  QString inspecting_;
};

class BudgetPage : public QWizardPage {
  Q_OBJECT
 public:
  explicit BudgetPage(CompressWizard& wizard);
  void initializePage() override;
  bool isComplete() const override;
  bool validatePage() override;
  // Picks the preset at `index` (0.. for ~1 .. ~4 bits) or, with -1, the custom field.
  void choose(int index, const QString& custom = {});

 private:
  std::optional<AqlmConfig> current() const;
  void updateCustom();
  CompressWizard& wizard_;
  QButtonGroup* group_;
  QList<QRadioButton*> presets_;
  QList<std::optional<BudgetChoice>> preset_choices_;
  QRadioButton* custom_radio_;
  QLineEdit* custom_;
  QLabel* custom_status_;
  bool custom_valid_ = false;
};

class MethodPage : public QWizardPage {
  Q_OBJECT
 public:
  explicit MethodPage(CompressWizard& wizard);
  void initializePage() override;
  bool isComplete() const override;
  bool validatePage() override;
  QString calibrationStatus() const;

 private:
  void update();
  PipelineSettings settings() const;
  CompressWizard& wizard_;
  QComboBox* method_;
  QSpinBox* bits_;
  QComboBox* group_size_;
  QLabel* bits_label_;
  QRadioButton* bundled_;
  QRadioButton* own_files_;
  QListWidget* files_;
  QLabel* calibration_status_;
  QSpinBox* nsamples_;
  QSpinBox* seqlen_;
  QSpinBox* layer_epochs_;
  QSpinBox* layer_steps_;
  QCheckBox* finetune_;
  QSpinBox* epochs_;
  QSpinBox* global_epochs_;
  QLineEdit* eval_text_;
  bool calibration_ok_ = false;
};

class DevicePage : public QWizardPage {
  Q_OBJECT
 public:
  explicit DevicePage(CompressWizard& wizard);
  void initializePage() override;
  bool validatePage() override;
  QString estimateText() const;

 private:
  void update();
  CompressWizard& wizard_;
  QComboBox* device_;
  QSpinBox* threads_;
  QLabel* estimate_;
  QLabel* warning_;
};

class SummaryPage : public QWizardPage {
  Q_OBJECT
 public:
  explicit SummaryPage(CompressWizard& wizard);
  void initializePage() override;
  bool validatePage() override;

 private:
  CompressWizard& wizard_;
  QLabel* summary_;
  QLineEdit* out_dir_;
  QCheckBox* overwrite_;
};

}  // namespace aqlm::studio
