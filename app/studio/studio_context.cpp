#include "app/studio/studio_context.h"

#include <QMessageBox>
#include <QSettings>
#include <QThread>

#include <cstdio>
#include <cstdlib>

#include "core/common/error.h"
#include "core/common/paths.h"
#include "core/runtime/engine.h"

namespace aqlm::studio {

namespace {

QString to_qstring(const std::filesystem::path& path) { return QString::fromStdString(path.string()); }

QString method_label(store::QuantMethod method) { return QString::fromLatin1(store::name(method)).toUpper(); }

}  // namespace

StudioSettings default_settings() {
  StudioSettings settings;
  settings.modelsFolder = to_qstring(models_cache_dir());
  // Chat and compression use the first GPU when this build can (a CUDA build and a working GPU).
  settings.defaultDevice = cuda_device_count() > 0 ? QStringLiteral("cuda:0") : QStringLiteral("cpu");
  settings.threads = 0;
  return settings;
}

StudioContext::StudioContext(store::RunDatabase database, QObject* parent)
    : QObject(parent), database_(std::move(database)), database_path_(database_.file()) {
  settings_ = load_settings();
  error_reporter_ = [](const QString& title, const QString& message) {
    QMessageBox::critical(nullptr, title, message);
  };
  confirm_asker_ = [](const QString& title, const QString& question) {
    return QMessageBox::question(nullptr, title, question, QMessageBox::Yes | QMessageBox::Cancel, QMessageBox::Cancel) ==
           QMessageBox::Yes;
  };
  refreshChatModels();
  data_version_ = database_.data_version();
  fingerprint_ = database_fingerprint();
  external_changes_.setInterval(1000);
  connect(&external_changes_, &QTimer::timeout, this, &StudioContext::checkForExternalChanges);
  external_changes_.start();
}

StudioContext::~StudioContext() = default;

std::string StudioContext::database_fingerprint() {
  std::string print;
  for (const store::ModelSummary& model : database_.list_models()) {
    print += str("m", model.id, ":", model.run_count, ";");
    for (const store::RunSummary& run : database_.runs_of_model(model.id))
      print += str("r", run.id, ":", store::name(run.status), ":", run.latest_evaluations.size(), ";");
  }
  return print;
}

void StudioContext::checkForExternalChanges() {
  try {
    const std::int64_t version = database_.data_version();
    if (version == data_version_) return;
    data_version_ = version;
    std::string print = database_fingerprint();
    if (print == fingerprint_) return;
    fingerprint_ = std::move(print);
  } catch (const Error& error) {
    log(LogLevel::Warning, QString::fromStdString(error.what()));
    return;
  }
  refreshChatModels();
  Q_EMIT databaseChanged();
}

QString StudioContext::settingsFile() const { return to_qstring(database_path_.parent_path() / "studio.ini"); }

StudioSettings StudioContext::load_settings() const {
  const StudioSettings defaults = default_settings();
  QSettings file(settingsFile(), QSettings::IniFormat);
  StudioSettings settings;
  settings.modelsFolder = file.value("models_folder", defaults.modelsFolder).toString();
  settings.defaultDevice = file.value("default_device", defaults.defaultDevice).toString();
  settings.threads = file.value("threads", defaults.threads).toInt();
  if (settings.threads < 0) settings.threads = 0;
  return settings;
}

void StudioContext::setSettings(const StudioSettings& settings) {
  QSettings file(settingsFile(), QSettings::IniFormat);
  file.setValue("models_folder", settings.modelsFolder);
  file.setValue("default_device", settings.defaultDevice);
  file.setValue("threads", settings.threads);
  file.sync();
  if (settings == settings_) return;
  settings_ = settings;
  Q_EMIT settingsChanged();
}

void StudioContext::refreshChatModels() {
  QVector<ChatModel> models;
  try {
    for (const store::ModelSummary& model : database_.list_models()) {
      const QString model_name = QString::fromStdString(model.name);
      if (std::filesystem::exists(model.path)) {
        ChatModel entry;
        entry.path = to_qstring(model.path);
        entry.displayName = model_name;
        entry.detail = QStringLiteral("%1 · %2 · %3 M parameters")
                           .arg(QString::fromStdString(model.format), QString::fromStdString(model.dtype))
                           .arg(double(model.parameters) / 1e6, 0, 'f', 1);
        entry.modelId = model.id;
        models.push_back(entry);
      }
      for (const store::RunSummary& run : database_.runs_of_model(model.id)) {
        if (run.status != store::RunStatus::Finished || run.output_dir.empty() ||
            !std::filesystem::exists(run.output_dir))
          continue;
        ChatModel entry;
        entry.path = to_qstring(run.output_dir);
        entry.displayName = QStringLiteral("%1 · %2 %3 (run %4)")
                                .arg(model_name, method_label(run.method), QString::fromStdString(run.config))
                                .arg(run.id);
        const std::optional<double> bits = run.bits_measured ? run.bits_measured : run.bits_predicted;
        entry.detail = bits ? QStringLiteral("%1 bits per parameter").arg(*bits, 0, 'f', 3) : QString();
        entry.runId = run.id;
        models.push_back(entry);
      }
    }
  } catch (const Error& error) {
    log(LogLevel::Error, QString::fromStdString(error.what()));
    return;
  }
  if (models == chat_models_) return;
  chat_models_ = std::move(models);
  Q_EMIT chatModelsChanged();
}

void StudioContext::notifyDatabaseChanged() {
  try {
    fingerprint_ = database_fingerprint();
  } catch (const Error&) {
    fingerprint_.clear();  // compared again at the next check
  }
  refreshChatModels();
  Q_EMIT databaseChanged();
}

void StudioContext::log(LogLevel level, const QString& message) {
  Q_ASSERT(QThread::currentThread() == thread());
  if (std::getenv("AQLM_STUDIO_LOG_STDERR") != nullptr) {
    static const char* const names[] = {"info", "warning", "error"};
    std::fprintf(stderr, "[%s] %s\n", names[int(level)], message.toLocal8Bit().constData());
  }
  Q_EMIT logMessage(level, message);
}

void StudioContext::reportError(const QString& title, const QString& message) {
  log(LogLevel::Error, title + QStringLiteral(": ") + message);
  Q_EMIT errorReported(title, message);
  if (error_reporter_) error_reporter_(title, message);
}

}  // namespace aqlm::studio
