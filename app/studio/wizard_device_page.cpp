#include <QComboBox>
#include <QFormLayout>
#include <QLabel>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QThread>

#include "app/studio/system_monitor.h"
#include "app/studio/wizard_pages.h"
#include "core/runtime/engine.h"

namespace aqlm::studio {

namespace {

QString duration_text(double seconds) {
  if (seconds < 90) return QObject::tr("%1 s").arg(std::max(1, int(std::lround(seconds))));
  if (seconds < 5400) return QObject::tr("%1 min").arg(int(std::lround(seconds / 60)));
  return QObject::tr("%1 h").arg(seconds / 3600, 0, 'f', 1);
}

}  // namespace

DevicePage::DevicePage(CompressWizard& wizard) : wizard_(wizard) {
  setObjectName(QStringLiteral("devicePage"));
  setTitle(tr("4. Device"));
  setSubTitle(tr("Where the compression runs, and what it will take."));
  device_ = new QComboBox;
  device_->setObjectName(QStringLiteral("device"));
  threads_ = new QSpinBox;
  threads_->setObjectName(QStringLiteral("runThreads"));
  threads_->setRange(0, 1024);
  threads_->setSpecialValueText(tr("all cores (%1)").arg(QThread::idealThreadCount()));
  estimate_ = new QLabel;
  estimate_->setObjectName(QStringLiteral("estimate"));
  estimate_->setWordWrap(true);
  warning_ = new QLabel;
  warning_->setObjectName(QStringLiteral("memoryWarning"));
  warning_->setWordWrap(true);
  warning_->setStyleSheet(QStringLiteral("color:#a00"));
  auto* form = new QFormLayout(this);
  form->addRow(tr("Device:"), device_);
  form->addRow(tr("CPU threads:"), threads_);
  form->addRow(estimate_);
  form->addRow(warning_);
  connect(device_, &QComboBox::currentIndexChanged, this, &DevicePage::update);
  connect(threads_, &QSpinBox::valueChanged, this, &DevicePage::update);
}

void DevicePage::initializePage() {
  device_->clear();
  const MemoryInfo memory = read_memory_info();
  device_->addItem(tr("CPU (%1 of RAM free)").arg(format_bytes(double(memory.available_bytes))), QStringLiteral("cpu"));
  if (const SystemMonitor* monitor = wizard_.monitor()) {
    // aqlm-cli quantize --device cuda needs a CUDA build: without one each GPU is listed,
    // disabled, with the reason.
    const bool usable = cuda_device_count() > 0;
    for (const GpuInfo& gpu : monitor->gpus()) {
      device_->addItem(usable ? tr("GPU %1: %2 (%3 free)").arg(gpu.index).arg(gpu.name, format_bytes(double(gpu.free_bytes())))
                              : tr("GPU %1: %2 — this build has no CUDA backend").arg(gpu.index).arg(gpu.name),
                       QStringLiteral("cuda:%1").arg(gpu.index));
      if (!usable) {
        auto* model = qobject_cast<QStandardItemModel*>(device_->model());
        model->item(device_->count() - 1)->setEnabled(false);
      }
    }
  }
  threads_->setValue(wizard_.choice().spec.threads);
  update();
}

void DevicePage::update() {
  const WizardChoice& choice = wizard_.choice();
  if (!choice.model) return;
  const RunEstimate estimate =
      estimate_run(choice.model->config, choice.model->loaded_bytes, choice.spec.pipeline, threads_->value());
  const QString device = device_->currentData().toString();
  if (device.startsWith(QStringLiteral("cuda"))) {
    std::int64_t free_bytes = 0;
    if (const SystemMonitor* monitor = wizard_.monitor())
      for (const GpuInfo& gpu : monitor->gpus())
        if (QStringLiteral("cuda:%1").arg(gpu.index) == device) free_bytes = gpu.free_bytes();
    estimate_->setText(tr("Rough estimate: about %1 on the GPU (H100-class); about %2 of GPU memory (calibration "
                          "activations, one block's weights and statistics, a fine-tuning batch).")
                           .arg(duration_text(estimate.gpu_seconds))
                           .arg(format_bytes(double(estimate.gpu_peak_bytes))));
    if (free_bytes > 0 && estimate.gpu_peak_bytes > free_bytes)
      warning_->setText(tr("This may not fit: it needs about %1 but %2 of GPU memory is free. Use fewer or shorter "
                           "calibration windows or a smaller fine-tuning batch.")
                            .arg(format_bytes(double(estimate.gpu_peak_bytes)), format_bytes(double(free_bytes))));
    else
      warning_->clear();
    return;
  }
  const MemoryInfo memory = read_memory_info();
  estimate_->setText(tr("Rough estimate: about %1 on %2 threads; peak memory about %3 (the model as loaded %4, "
                        "calibration activations and one block's statistics).")
                         .arg(duration_text(estimate.seconds))
                         .arg(threads_->value() > 0 ? threads_->value() : QThread::idealThreadCount())
                         .arg(format_bytes(double(estimate.peak_bytes)), format_bytes(double(choice.model->loaded_bytes))));
  if (memory.available_bytes > 0 && estimate.peak_bytes > memory.available_bytes)
    warning_->setText(tr("This will not fit: it needs about %1 but %2 of RAM is free. Use fewer or shorter "
                         "calibration windows, or close other programs.")
                          .arg(format_bytes(double(estimate.peak_bytes)), format_bytes(double(memory.available_bytes))));
  else
    warning_->clear();
}

QString DevicePage::estimateText() const { return estimate_->text() + '\n' + warning_->text(); }

bool DevicePage::validatePage() {
  wizard_.choice().spec.device = device_->currentData().toString();
  wizard_.choice().spec.threads = threads_->value();
  return true;
}

}  // namespace aqlm::studio
