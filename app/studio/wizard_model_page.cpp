#include <QComboBox>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QVBoxLayout>

#include "app/studio/system_monitor.h"
#include "app/studio/wizard_pages.h"

namespace aqlm::studio {

ModelPage::ModelPage(CompressWizard& wizard) : wizard_(wizard) {
  setObjectName(QStringLiteral("modelPage"));
  setTitle(tr("1. Model"));
  setSubTitle(tr("The model to compress: one of the library, or any GGUF file, llama2.c .bin or Hugging Face folder."));
  library_ = new QComboBox;
  library_->setObjectName(QStringLiteral("libraryModels"));
  path_ = new QLineEdit;
  path_->setObjectName(QStringLiteral("modelPath"));
  path_->setPlaceholderText(tr("path of a model file or folder"));
  auto* browse_file = new QPushButton(tr("File…"));
  auto* browse_folder = new QPushButton(tr("Folder…"));
  status_ = new QLabel;
  status_->setObjectName(QStringLiteral("modelStatus"));
  status_->setWordWrap(true);
  status_->setTextFormat(Qt::RichText);
  watcher_ = new QFutureWatcher<InspectionResult>(this);

  connect(library_, &QComboBox::activated, this, [this](int index) {
    if (index > 0) setPath(library_->itemData(index).toString());
  });
  connect(path_, &QLineEdit::editingFinished, this, [this] { inspect(path_->text().trimmed()); });
  connect(browse_file, &QPushButton::clicked, this, [this] {
    const QString file = QFileDialog::getOpenFileName(this, tr("Model file"), wizard_.context().settings().modelsFolder,
                                                      tr("Models (*.gguf *.bin);;All files (*)"));
    if (!file.isEmpty()) setPath(file);
  });
  connect(browse_folder, &QPushButton::clicked, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Model folder"), wizard_.context().settings().modelsFolder);
    if (!dir.isEmpty()) setPath(dir);
  });
  connect(watcher_, &QFutureWatcher<InspectionResult>::finished, this, [this] {
    const InspectionResult result = watcher_->result();
    if (result.path != inspecting_) return;  // an older request
    WizardChoice& choice = wizard_.choice();
    choice.model.reset();
    choice.model_id.reset();
    if (!result.description) {
      status_->setText(tr("<span style='color:#a00'>Cannot use this: %1</span>").arg(result.error.toHtmlEscaped()));
    } else if (result.description->quantized) {
      status_->setText(tr("<span style='color:#a00'>Cannot use this: %1 is already compressed with AQLM (%2); pick the "
                          "original model</span>")
                           .arg(result.path.toHtmlEscaped(), QString::fromStdString(result.description->info.dtype)));
    } else {
      choice.model = result.description;
      const auto row = wizard_.context().database().find_model_by_path(result.description->info.path);
      if (row) choice.model_id = row->id;
      const ModelDescription& d = *result.description;
      status_->setText(tr("<b>%1</b>: %2, %3 blocks, %4 M parameters, %5, %6 on disk, %7 to run%8")
                           .arg(QString::fromStdString(d.info.name).toHtmlEscaped(), QString::fromStdString(d.info.architecture))
                           .arg(d.config.num_layers)
                           .arg(double(d.info.parameters) / 1e6, 0, 'f', 2)
                           .arg(QString::fromStdString(d.info.dtype), format_bytes(double(d.info.size_bytes)),
                                format_bytes(double(d.memory_bytes)),
                                row ? QString() : tr(" (it joins the library when the run starts)")));
    }
    Q_EMIT completeChanged();
  });

  auto* path_row = new QHBoxLayout;
  path_row->addWidget(path_);
  path_row->addWidget(browse_file);
  path_row->addWidget(browse_folder);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(new QLabel(tr("From the library:")));
  layout->addWidget(library_);
  layout->addWidget(new QLabel(tr("Or a file or folder:")));
  layout->addLayout(path_row);
  layout->addSpacing(12);
  layout->addWidget(status_);
  layout->addStretch();
}

void ModelPage::initializePage() {
  library_->clear();
  library_->addItem(tr("— choose —"));
  for (const store::ModelSummary& model : wizard_.context().database().list_models())
    if (model.format != "hf-aqlm")
      library_->addItem(QStringLiteral("%1 (%2, %3)").arg(QString::fromStdString(model.name), QString::fromStdString(model.format),
                                                         QString::fromStdString(model.dtype)),
                        QString::fromStdString(model.path.string()));
}

void ModelPage::setPath(const QString& path) {
  path_->setText(path);
  const int index = library_->findData(path);
  if (index >= 0) library_->setCurrentIndex(index);
  inspect(path);
}

void ModelPage::inspect(const QString& path) {
  if (path.isEmpty() || path == inspecting_) return;
  inspecting_ = path;
  wizard_.choice().model.reset();
  status_->setText(tr("Reading %1…").arg(path.toHtmlEscaped()));
  Q_EMIT completeChanged();
  watcher_->setFuture(inspect_async(path));
}

bool ModelPage::isComplete() const { return wizard_.choice().model.has_value() && watcher_->isFinished(); }

QString ModelPage::statusText() const { return status_->text(); }

}  // namespace aqlm::studio
