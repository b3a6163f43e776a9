#include "app/studio/compress_wizard.h"

#include "app/studio/wizard_pages.h"

namespace aqlm::studio {

CompressWizard::CompressWizard(StudioContext& context, const SystemMonitor* monitor, QWidget* parent)
    : QWizard(parent), context_(context), monitor_(monitor) {
  setObjectName(QStringLiteral("compressWizard"));
  setWindowTitle(tr("New compression"));
  setWizardStyle(QWizard::ClassicStyle);
  setOption(QWizard::NoBackButtonOnStartPage);
  setButtonText(QWizard::FinishButton, tr("Start"));
  setPage(ModelPageId, new ModelPage(*this));
  setPage(BudgetPageId, new BudgetPage(*this));
  setPage(MethodPageId, new MethodPage(*this));
  setPage(DevicePageId, new DevicePage(*this));
  setPage(SummaryPageId, new SummaryPage(*this));
  choice_.spec.device = context.settings().defaultDevice;
  choice_.spec.threads = context.settings().threads;
  resize(820, 620);
}

void CompressWizard::setModelPath(const QString& path) { static_cast<ModelPage*>(page(ModelPageId))->setPath(path); }

void CompressWizard::accept() {
  // QWizard validates the last page only in done(), after this; the run needs its settings now.
  if (!validateCurrentPage()) return;
  // The model joins the library when it is not there yet, so the run has a model row.
  if (!choice_.model_id) {
    try {
      choice_.model_id = context_.database().add_model(choice_.model->info);
      context_.notifyDatabaseChanged();
    } catch (const Error& error) {
      context_.reportError(tr("Starting a run"), QString::fromStdString(error.what()));
      return;
    }
  }
  Q_EMIT startRequested(*choice_.model_id, choice_.spec, choice_.predicted_bits);
  QWizard::accept();
}

}  // namespace aqlm::studio
