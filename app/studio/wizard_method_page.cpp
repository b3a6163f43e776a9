#include <QCheckBox>
#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QRadioButton>
#include <QSpinBox>
#include <QVBoxLayout>

#include <vector>

#include "app/studio/system_monitor.h"
#include "app/studio/wizard_pages.h"
#include "core/common/error.h"
#include "core/common/paths.h"
#include "core/quant/calibration.h"
#include "core/quant/pipeline_output.h"

namespace aqlm::studio {

namespace {

// A calibration file the run could not use: missing, unreadable or without any text. Files
// past 64 MB are only checked for existence here (reading them would stall the page).
QString calibration_problem(const QString& path) {
  const QFileInfo info(path);
  if (!info.exists()) return QObject::tr("%1: does not exist").arg(path);
  if (info.size() > 64 * 1024 * 1024) return {};
  try {
    for (const std::string& document : read_calibration_documents(path.toStdString()))
      if (document.find_first_not_of(" \t\r\n") != std::string::npos) return {};
    return QObject::tr("%1: the file has no text (calibration needs at least nsamples × seqlen tokens)").arg(path);
  } catch (const Error& error) {
    return QString::fromStdString(error.what());
  }
}

// WikiText-2's test split where the app keeps its data: beside the bundled calibration text
// (core's lookup: the installed share/aqlm-studio/data, the tree's resources/data, ...), else in
// the app's data folder. Empty (no evaluation) when it is in neither.
QString default_eval_text() {
  std::vector<std::filesystem::path> candidates;
  try {
    candidates.push_back(default_calibration_text_path().parent_path() / "wikitext2-test.txt");
  } catch (const Error&) {
    // no bundled data: only the app's data folder remains
  }
  candidates.push_back(app_data_dir() / "data" / "wikitext2-test.txt");
  for (const std::filesystem::path& file : candidates)
    if (std::filesystem::is_regular_file(file)) return QString::fromStdString(std::filesystem::absolute(file).lexically_normal().string());
  return {};
}

}  // namespace

MethodPage::MethodPage(CompressWizard& wizard) : wizard_(wizard) {
  setObjectName(QStringLiteral("methodPage"));
  setTitle(tr("3. Method and calibration"));
  setSubTitle(tr("AQLM learns codebooks from calibration text; GPTQ and RTN round to a uniform grid (the baselines)."));

  method_ = new QComboBox;
  method_->setObjectName(QStringLiteral("method"));
  method_->addItem(tr("AQLM (additive quantization)"), QStringLiteral("aqlm"));
  method_->addItem(tr("GPTQ (uniform grid, error feedback)"), QStringLiteral("gptq"));
  method_->addItem(tr("RTN (round to nearest)"), QStringLiteral("rtn"));
  bits_ = new QSpinBox;
  bits_->setObjectName(QStringLiteral("uniformBits"));
  bits_->setRange(2, 8);
  bits_->setSuffix(tr(" bits"));
  group_size_ = new QComboBox;
  group_size_->setObjectName(QStringLiteral("uniformGroup"));
  for (int g : {32, 64, 128}) group_size_->addItem(QString::number(g), g);
  group_size_->addItem(tr("one per row"), 0);
  group_size_->setCurrentIndex(1);
  bits_label_ = new QLabel;
  bits_label_->setObjectName(QStringLiteral("methodBits"));
  bits_label_->setWordWrap(true);

  bundled_ = new QRadioButton(tr("Bundled default (%1, 2,000 C4 documents)").arg(kDefaultCalibrationFile));
  bundled_->setObjectName(QStringLiteral("calibrationBundled"));
  own_files_ = new QRadioButton(tr("My files (plain text or .jsonl with a \"text\" field):"));
  own_files_->setObjectName(QStringLiteral("calibrationOwn"));
  bundled_->setChecked(true);
  files_ = new QListWidget;
  files_->setObjectName(QStringLiteral("calibrationFiles"));
  files_->setMaximumHeight(70);
  auto* add_files = new QPushButton(tr("Add…"));
  auto* clear_files = new QPushButton(tr("Clear"));
  calibration_status_ = new QLabel;
  calibration_status_->setObjectName(QStringLiteral("calibrationStatus"));
  calibration_status_->setWordWrap(true);
  connect(add_files, &QPushButton::clicked, this, [this] {
    for (const QString& file : QFileDialog::getOpenFileNames(this, tr("Calibration text"), QString(),
                                                             tr("Text (*.txt *.jsonl);;All files (*)")))
      files_->addItem(file);
    own_files_->setChecked(true);
    update();
  });
  connect(clear_files, &QPushButton::clicked, this, [this] {
    files_->clear();
    update();
  });

  auto spin = [](const char* name, int low, int high, int value) {
    auto* box = new QSpinBox;
    box->setObjectName(QString::fromLatin1(name));
    box->setRange(low, high);
    box->setValue(value);
    return box;
  };
  const PipelineSettings defaults;
  nsamples_ = spin("nsamples", 1, 100000, int(defaults.nsamples));
  seqlen_ = spin("seqlen", 8, 32768, int(defaults.seqlen));
  layer_epochs_ = spin("layerEpochs", 1, 1000, defaults.layer_max_epochs);
  layer_steps_ = spin("layerSteps", 1, 10000, defaults.layer_adam_steps);
  finetune_ = new QCheckBox(tr("Fine-tune each block after quantizing it (AQLM: codebooks, scales, norms)"));
  finetune_->setObjectName(QStringLiteral("finetune"));
  finetune_->setChecked(defaults.finetune);
  epochs_ = spin("finetuneEpochs", 1, 1000, defaults.finetune_epochs);
  global_epochs_ = spin("globalEpochs", 0, 100, defaults.global_finetune_epochs);
  global_epochs_->setSpecialValueText(tr("off"));
  global_epochs_->setToolTip(tr("After the last block, train the whole compressed model's codebooks, scales and norms "
                                "so its next-token distributions match the original model's (KL on the calibration "
                                "windows; PV-Tuning's continuous step). Runs on the CPU."));
  eval_text_ = new QLineEdit(default_eval_text());
  eval_text_->setObjectName(QStringLiteral("evalText"));
  eval_text_->setPlaceholderText(tr("a text file to measure the result's perplexity on (empty: none)"));

  auto* method_box = new QGroupBox(tr("Method"));
  auto* method_form = new QFormLayout(method_box);
  method_form->addRow(tr("Method:"), method_);
  auto* uniform_row = new QHBoxLayout;
  uniform_row->addWidget(bits_);
  uniform_row->addWidget(new QLabel(tr("group size:")));
  uniform_row->addWidget(group_size_);
  uniform_row->addStretch();
  method_form->addRow(tr("GPTQ/RTN grid:"), uniform_row);
  method_form->addRow(bits_label_);

  auto* calib_box = new QGroupBox(tr("Calibration"));
  auto* calib_layout = new QVBoxLayout(calib_box);
  calib_layout->addWidget(bundled_);
  calib_layout->addWidget(own_files_);
  auto* files_row = new QHBoxLayout;
  files_row->addWidget(files_);
  auto* file_buttons = new QVBoxLayout;
  file_buttons->addWidget(add_files);
  file_buttons->addWidget(clear_files);
  file_buttons->addStretch();
  files_row->addLayout(file_buttons);
  calib_layout->addLayout(files_row);
  calib_layout->addWidget(calibration_status_);
  auto* windows_row = new QHBoxLayout;
  windows_row->addWidget(new QLabel(tr("Windows:")));
  windows_row->addWidget(nsamples_);
  windows_row->addWidget(new QLabel(tr("of")));
  windows_row->addWidget(seqlen_);
  windows_row->addWidget(new QLabel(tr("tokens")));
  windows_row->addStretch();
  calib_layout->addLayout(windows_row);

  auto* tune_box = new QGroupBox(tr("Optimization"));
  auto* tune_form = new QFormLayout(tune_box);
  auto* layer_row = new QHBoxLayout;
  layer_row->addWidget(layer_epochs_);
  layer_row->addWidget(new QLabel(tr("rounds of")));
  layer_row->addWidget(layer_steps_);
  layer_row->addWidget(new QLabel(tr("Adam steps + beam search")));
  layer_row->addStretch();
  tune_form->addRow(tr("Per layer (at most):"), layer_row);
  auto* finetune_row = new QHBoxLayout;
  finetune_row->addWidget(finetune_);
  finetune_row->addWidget(new QLabel(tr("epochs:")));
  finetune_row->addWidget(epochs_);
  finetune_row->addStretch();
  tune_form->addRow(finetune_row);
  auto* global_row = new QHBoxLayout;
  global_row->addWidget(global_epochs_);
  global_row->addWidget(new QLabel(tr("epochs against the original model (KL)")));
  global_row->addStretch();
  tune_form->addRow(tr("Global fine-tuning:"), global_row);
  tune_form->addRow(tr("Evaluate on:"), eval_text_);

  auto* layout = new QVBoxLayout(this);
  layout->addWidget(method_box);
  layout->addWidget(calib_box);
  layout->addWidget(tune_box);

  for (QSpinBox* box : {bits_, nsamples_, seqlen_, layer_epochs_, layer_steps_, epochs_, global_epochs_})
    connect(box, &QSpinBox::valueChanged, this, &MethodPage::update);
  connect(method_, &QComboBox::currentIndexChanged, this, &MethodPage::update);
  connect(group_size_, &QComboBox::currentIndexChanged, this, &MethodPage::update);
  connect(bundled_, &QRadioButton::toggled, this, &MethodPage::update);
  connect(finetune_, &QCheckBox::toggled, this, &MethodPage::update);
}

void MethodPage::initializePage() {
  bits_->setValue(std::clamp(int(std::lround(wizard_.choice().predicted_bits > 0 ? wizard_.choice().predicted_bits : 2)), 2, 8));
  update();
}

PipelineSettings MethodPage::settings() const {
  PipelineSettings s;
  s.method = parse_pipeline_method(method_->currentData().toString().toStdString());
  s.aqlm = wizard_.choice().aqlm;
  s.bits = bits_->value();
  s.group_size = group_size_->currentData().toInt();
  if (own_files_->isChecked())
    for (int i = 0; i < files_->count(); ++i) s.calibration_files.push_back(files_->item(i)->text().toStdString());
  s.nsamples = nsamples_->value();
  s.seqlen = seqlen_->value();
  s.layer_max_epochs = layer_epochs_->value();
  s.layer_adam_steps = layer_steps_->value();
  s.finetune = finetune_->isChecked() && s.method == PipelineMethod::Aqlm;
  s.finetune_epochs = epochs_->value();
  s.global_finetune_epochs = s.method == PipelineMethod::Aqlm ? global_epochs_->value() : 0;
  s.eval_text = eval_text_->text().trimmed().toStdString();
  return s;
}

void MethodPage::update() {
  const bool aqlm = method_->currentData().toString() == QLatin1String("aqlm");
  bits_->setEnabled(!aqlm);
  group_size_->setEnabled(!aqlm);
  finetune_->setEnabled(aqlm);
  epochs_->setEnabled(aqlm && finetune_->isChecked());
  global_epochs_->setEnabled(aqlm);
  layer_epochs_->setEnabled(aqlm);
  layer_steps_->setEnabled(aqlm);
  if (wizard_.choice().model) {
    try {
      const BudgetChoice choice = evaluate_budget(wizard_.choice().model->config, settings());
      bits_label_->setText(tr("%1 %2: %3 bits per parameter, %4 of weights%5")
                               .arg(method_->currentData().toString().toUpper(),
                                    QString::fromStdString(method_config_name(choice.settings)))
                               .arg(choice.bits_per_parameter, 0, 'f', 3)
                               .arg(format_bytes(double(choice.weight_bytes)),
                                    aqlm ? QString() : tr(" (saved dequantized in fp16: the file is not smaller)")));
    } catch (const Error& error) {
      bits_label_->setText(QString::fromStdString(error.what()));
    }
  }
  QStringList problems;
  if (own_files_->isChecked()) {
    if (files_->count() == 0) problems << tr("add at least one calibration file");
    for (int i = 0; i < files_->count(); ++i)
      if (const QString problem = calibration_problem(files_->item(i)->text()); !problem.isEmpty()) problems << problem;
  } else {
    try {
      calibration_status_->setToolTip(QString::fromStdString(default_calibration_text_path().string()));
    } catch (const Error& error) {
      problems << QString::fromStdString(error.what());
    }
  }
  calibration_ok_ = problems.isEmpty();
  calibration_status_->setText(calibration_ok_ ? tr("Calibration: %1 windows of %2 tokens.").arg(nsamples_->value()).arg(seqlen_->value())
                                               : problems.join('\n'));
  calibration_status_->setStyleSheet(calibration_ok_ ? QString() : QStringLiteral("color:#a00"));
  Q_EMIT completeChanged();
}

QString MethodPage::calibrationStatus() const { return calibration_status_->text(); }

bool MethodPage::isComplete() const { return calibration_ok_ && wizard_.choice().model.has_value(); }

bool MethodPage::validatePage() {
  PipelineSettings s = settings();
  try {
    s.model = wizard_.choice().model->info.path.string();
    s.out_dir = "out";  // validated here for its numbers; the summary page chooses the folder
    s.validate();
    wizard_.choice().predicted_bits = evaluate_budget(wizard_.choice().model->config, s).bits_per_parameter;
  } catch (const Error& error) {
    calibration_status_->setText(QString::fromStdString(error.what()));
    calibration_status_->setStyleSheet(QStringLiteral("color:#a00"));
    return false;
  }
  s.out_dir.clear();
  wizard_.choice().spec.pipeline = s;
  return true;
}

}  // namespace aqlm::studio
