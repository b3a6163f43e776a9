#include <QCheckBox>
#include <QDir>
#include <QFileInfo>
#include <QFormLayout>
#include <QLabel>
#include <QLineEdit>

#include "app/studio/wizard_pages.h"
#include "core/quant/calibration.h"
#include "core/quant/pipeline_output.h"

namespace aqlm::studio {

SummaryPage::SummaryPage(CompressWizard& wizard) : wizard_(wizard) {
  setObjectName(QStringLiteral("summaryPage"));
  setTitle(tr("5. Summary"));
  setSubTitle(tr("Start runs aqlm-cli in the background; the Compress tab shows it live. Pause keeps a checkpoint "
                 "that Resume continues, also after closing the studio."));
  summary_ = new QLabel;
  summary_->setObjectName(QStringLiteral("summary"));
  summary_->setWordWrap(true);
  summary_->setTextFormat(Qt::RichText);
  out_dir_ = new QLineEdit;
  out_dir_->setObjectName(QStringLiteral("outputFolder"));
  overwrite_ = new QCheckBox(tr("Replace the folder if it exists"));
  overwrite_->setObjectName(QStringLiteral("overwrite"));
  auto* form = new QFormLayout(this);
  form->addRow(summary_);
  form->addRow(tr("Output folder:"), out_dir_);
  form->addRow(QString(), overwrite_);
  setFinalPage(true);
}

void SummaryPage::initializePage() {
  const WizardChoice& choice = wizard_.choice();
  const PipelineSettings& s = choice.spec.pipeline;
  const QString name = QString::fromStdString(choice.model->info.name);
  const QString config = QString::fromStdString(method_config_name(s));
  const QString folder = QDir(wizard_.context().settings().modelsFolder)
                             .filePath(QStringLiteral("%1-%2-%3").arg(name, QString(pipeline_method_name(s.method)), config));
  out_dir_->setText(folder);
  QString calibration;
  for (const std::string& file : s.calibration_files) calibration += QFileInfo(QString::fromStdString(file)).fileName() + ' ';
  auto row = [](const QString& key, const QString& value) {
    return QStringLiteral("<tr><td><b>%1</b>&nbsp;&nbsp;</td><td>%2</td></tr>").arg(key, value.toHtmlEscaped());
  };
  QString html = QStringLiteral("<table>");
  html += row(tr("Model"), QString::fromStdString(choice.model->info.path.string()));
  html += row(tr("Method"), QStringLiteral("%1 %2").arg(QString(pipeline_method_name(s.method)).toUpper(), config));
  html += row(tr("Bits per parameter"), QString::number(choice.predicted_bits, 'f', 3));
  html += row(tr("Calibration"), tr("%1 windows of %2 tokens from %3")
                                     .arg(s.nsamples)
                                     .arg(s.seqlen)
                                     .arg(calibration.isEmpty() ? QString::fromLatin1(kDefaultCalibrationFile) : calibration.trimmed()));
  if (s.method == PipelineMethod::Aqlm)
    html += row(tr("Optimization"), tr("up to %1 rounds of %2 Adam steps per layer; %3")
                                        .arg(s.layer_max_epochs)
                                        .arg(s.layer_adam_steps)
                                        .arg(s.finetune ? tr("block fine-tuning, up to %1 epochs").arg(s.finetune_epochs)
                                                        : tr("no block fine-tuning"))
                                        + (s.global_finetune_epochs > 0
                                               ? tr("; global fine-tuning, %1 epochs").arg(s.global_finetune_epochs)
                                               : QString()));
  html += row(tr("Evaluation"), s.eval_text.empty() ? tr("none") : QString::fromStdString(s.eval_text));
  html += row(tr("Device"), tr("%1, %2 threads").arg(choice.spec.device).arg(choice.spec.threads > 0 ? QString::number(choice.spec.threads) : tr("all")));
  summary_->setText(html + QStringLiteral("</table>"));
}

bool SummaryPage::validatePage() {
  const QString folder = out_dir_->text().trimmed();
  if (folder.isEmpty()) return false;
  if (QFileInfo::exists(folder) && !overwrite_->isChecked()) {
    setSubTitle(tr("%1 exists: choose another folder or tick \"Replace\".").arg(folder));
    return false;
  }
  PipelineSettings& s = wizard_.choice().spec.pipeline;
  s.out_dir = QDir::cleanPath(QFileInfo(folder).absoluteFilePath()).toStdString();
  s.overwrite = overwrite_->isChecked();
  return true;
}

}  // namespace aqlm::studio
