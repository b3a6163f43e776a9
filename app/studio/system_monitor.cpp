#include "app/studio/system_monitor.h"

#include <QFile>
#include <QRegularExpression>
#include <QStandardPaths>

namespace aqlm::studio {

namespace {

// "MemTotal:  16318412 kB" -> bytes
std::int64_t kib_field(const QString& text, const QString& key) {
  const QRegularExpression re(QStringLiteral("^%1:\\s+(\\d+) kB").arg(key), QRegularExpression::MultilineOption);
  const QRegularExpressionMatch match = re.match(text);
  return match.hasMatch() ? match.captured(1).toLongLong() * 1024 : 0;
}

QString read_all(const QString& path) {
  QFile file(path);
  return file.open(QIODevice::ReadOnly) ? QString::fromLatin1(file.readAll()) : QString();
}

}  // namespace

MemoryInfo read_memory_info() {
  const QString meminfo = read_all(QStringLiteral("/proc/meminfo"));
  MemoryInfo info;
  info.total_bytes = kib_field(meminfo, QStringLiteral("MemTotal"));
  info.available_bytes = kib_field(meminfo, QStringLiteral("MemAvailable"));
  info.process_bytes = kib_field(read_all(QStringLiteral("/proc/self/status")), QStringLiteral("VmRSS"));
  return info;
}

std::vector<GpuInfo> parse_nvidia_smi(const QString& csv) {
  std::vector<GpuInfo> gpus;
  for (const QString& line : csv.split('\n', Qt::SkipEmptyParts)) {
    const QStringList fields = line.split(',');
    if (fields.size() < 4) continue;
    GpuInfo gpu;
    bool ok_index = false, ok_total = false, ok_used = false;
    gpu.index = fields[0].trimmed().toInt(&ok_index);
    gpu.name = fields[1].trimmed();
    gpu.total_bytes = fields[2].trimmed().toLongLong(&ok_total) * 1024 * 1024;  // MiB
    gpu.used_bytes = fields[3].trimmed().toLongLong(&ok_used) * 1024 * 1024;
    if (ok_index && ok_total && ok_used) gpus.push_back(gpu);
  }
  return gpus;
}

QString format_bytes(double bytes) {
  static const char* const units[] = {"B", "KB", "MB", "GB", "TB"};
  int unit = 0;
  while (bytes >= 1000 && unit < 4) {
    bytes /= 1000;
    ++unit;
  }
  return unit == 0 ? QStringLiteral("%1 B").arg(qint64(bytes)) : QStringLiteral("%1 %2").arg(bytes, 0, 'f', 1).arg(units[unit]);
}

SystemMonitor::SystemMonitor(QWidget* parent) : QLabel(parent) {
  setObjectName(QStringLiteral("systemMonitor"));
  connect(&timer_, &QTimer::timeout, this, &SystemMonitor::refresh);
  timer_.start(2000);
  smi_missing_ = QStandardPaths::findExecutable(QStringLiteral("nvidia-smi")).isEmpty();
  refresh();
}

void SystemMonitor::refresh() {
  const MemoryInfo memory = read_memory_info();
  QString text = tr("RAM %1 / %2 used (studio %3)")
                     .arg(format_bytes(double(memory.total_bytes - memory.available_bytes)),
                          format_bytes(double(memory.total_bytes)), format_bytes(double(memory.process_bytes)));
  for (const GpuInfo& gpu : gpus_)
    text += tr("   GPU %1: %2 / %3").arg(gpu.index).arg(format_bytes(double(gpu.used_bytes)), format_bytes(double(gpu.total_bytes)));
  setText(text);
  if (smi_missing_ || (smi_ && smi_->state() != QProcess::NotRunning)) return;
  if (!smi_) {
    smi_ = new QProcess(this);
    connect(smi_, &QProcess::finished, this, [this](int code) {
      const auto parsed = code == 0 ? parse_nvidia_smi(QString::fromUtf8(smi_->readAllStandardOutput())) : std::vector<GpuInfo>{};
      const bool changed = parsed.size() != gpus_.size();
      gpus_ = parsed;
      if (changed) Q_EMIT gpusChanged();
    });
    connect(smi_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError) { smi_missing_ = true; });
  }
  smi_->start(QStringLiteral("nvidia-smi"),
              {QStringLiteral("--query-gpu=index,name,memory.total,memory.used"), QStringLiteral("--format=csv,noheader,nounits")});
}

}  // namespace aqlm::studio
