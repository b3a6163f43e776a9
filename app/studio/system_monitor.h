#pragma once
// The status bar's resource readout: RAM in use / total (and this process's share), and each
// NVIDIA GPU's memory when nvidia-smi is present, refreshed every two seconds without
// blocking the UI (nvidia-smi runs as an asynchronous child process).
#include <QLabel>
#include <QProcess>
#include <QTimer>

#include <cstdint>
#include <optional>
#include <vector>

namespace aqlm::studio {

struct MemoryInfo {
  std::int64_t total_bytes = 0, available_bytes = 0, process_bytes = 0;
};
// From /proc/meminfo and /proc/self/status; zeros where they cannot be read.
MemoryInfo read_memory_info();

struct GpuInfo {
  int index = 0;
  QString name;
  std::int64_t total_bytes = 0, used_bytes = 0;
  std::int64_t free_bytes() const { return total_bytes - used_bytes; }
};
// Parses `nvidia-smi --query-gpu=index,name,memory.total,memory.used --format=csv,noheader,nounits`.
std::vector<GpuInfo> parse_nvidia_smi(const QString& csv);

QString format_bytes(double bytes);  // "538.1 MB", "1.2 GB"

class SystemMonitor : public QLabel {
  Q_OBJECT
 public:
  explicit SystemMonitor(QWidget* parent = nullptr);
  const std::vector<GpuInfo>& gpus() const { return gpus_; }

 Q_SIGNALS:
  void gpusChanged();

 private:
  void refresh();
  QTimer timer_;
  QProcess* smi_ = nullptr;
  bool smi_missing_ = false;
  std::vector<GpuInfo> gpus_;
};

}  // namespace aqlm::studio
