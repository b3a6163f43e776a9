#pragma once
// The compression wizard: (1) model, (2) bit budget, (3) method, calibration and fine-tuning,
// (4) device with time and memory estimates, (5) summary -> Start. The pages share one
// WizardChoice; Start emits startRequested and the main window hands it to the RunController.
#include <QWizard>

#include <optional>

#include "app/studio/model_inspector.h"
#include "app/studio/run_spec.h"
#include "app/studio/studio_context.h"

namespace aqlm::studio {

class SystemMonitor;

struct WizardChoice {
  std::optional<ModelDescription> model;     // page 1
  std::optional<store::Id> model_id;         // when the model is in the library
  AqlmConfig aqlm{2, 8, 8};                  // page 2
  RunSpec spec;                              // pages 3-5 fill the rest
  double predicted_bits = 0;
};

class CompressWizard : public QWizard {
  Q_OBJECT
 public:
  enum PageId { ModelPageId, BudgetPageId, MethodPageId, DevicePageId, SummaryPageId };

  CompressWizard(StudioContext& context, const SystemMonitor* monitor, QWidget* parent = nullptr);

  StudioContext& context() { return context_; }
  const SystemMonitor* monitor() const { return monitor_; }
  WizardChoice& choice() { return choice_; }
  // Preselects a model (the library's selection) before the wizard is shown.
  void setModelPath(const QString& path);

 Q_SIGNALS:
  void startRequested(qint64 model_id, const aqlm::studio::RunSpec& spec, double predicted_bits);

 protected:
  void accept() override;

 private:
  StudioContext& context_;
  const SystemMonitor* monitor_;
  WizardChoice choice_;
};

}  // namespace aqlm::studio
