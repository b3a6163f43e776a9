#pragma once
// What every view of the studio shares: the run database (for the UI thread), the list of
// models one can chat with, the application settings, a log sink and the one route for
// error dialogs. The main window owns one StudioContext and hands it to each view.
//
// The studio builds with QT_NO_KEYWORDS (core has a method named emit): write Q_SIGNALS,
// Q_SLOTS and Q_EMIT.
//
// Threads: a StudioContext lives on the UI thread. Workers never touch it; they open their
// own store::RunDatabase on databasePath() and talk to views through queued signals.
#include <QObject>
#include <QString>
#include <QTimer>
#include <QVector>

#include <filesystem>
#include <functional>
#include <optional>

#include "core/store/records.h"
#include "core/store/run_database.h"

namespace aqlm::studio {

// A model the Chat tab can load: a model file of the library, or a finished run's output.
struct ChatModel {
  QString path;         // what load_model takes: a GGUF/llama2.c file or an HF (AQLM) folder
  QString displayName;  // "SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct · AQLM 2x8g8 (run 3)"
  QString detail;       // one line for a tooltip: format, parameters, bits per parameter
  std::optional<store::Id> modelId;  // set for a library model (store::ConversationInfo::model_id)
  std::optional<store::Id> runId;    // set for a run's output (store::ConversationInfo::run_id)
  friend bool operator==(const ChatModel&, const ChatModel&) = default;
};

struct StudioSettings {
  QString modelsFolder;     // where "Add model" starts and new runs' outputs go
  QString defaultDevice;    // "cpu" or "cuda:N"
  int threads = 0;          // CPU threads for the engine; 0 = all cores
  friend bool operator==(const StudioSettings&, const StudioSettings&) = default;
};

enum class LogLevel { Info, Warning, Error };

class StudioContext : public QObject {
  Q_OBJECT
 public:
  // `database` is already open (the studio's start-up decides what to do with a corrupt or
  // newer file). Settings are read from settingsFile() (an INI file beside the database,
  // so AQLM_DATA_DIR isolates tests from the user's settings).
  explicit StudioContext(store::RunDatabase database, QObject* parent = nullptr);
  ~StudioContext() override;

  // The UI thread's connection. Workers open their own on databasePath().
  store::RunDatabase& database() { return database_; }
  std::filesystem::path databasePath() const { return database_path_; }
  QString settingsFile() const;

  // Library models (their own files) and finished runs' outputs that exist on disk, in
  // library order, each model followed by its runs.
  QVector<ChatModel> chatModels() const { return chat_models_; }
  // Re-reads the list from the database; emits chatModelsChanged when it differs.
  void refreshChatModels();
  // A view changed the database (model added or removed, run finished, evaluation made):
  // refreshes the chat models and emits databaseChanged so other views reload.
  void notifyDatabaseChanged();
  // Another process (aqlm-cli quantize --db, a studio run's child) or thread committed: when
  // models, runs, run statuses or evaluations differ from what the views last showed, the same
  // as notifyDatabaseChanged. A timer calls it every second; cheap when nothing changed (one
  // PRAGMA data_version).
  void checkForExternalChanges();

  StudioSettings settings() const { return settings_; }
  void setSettings(const StudioSettings& settings);  // saves; emits settingsChanged when it differs

  // A line for the log dock (and stderr when AQLM_STUDIO_LOG_STDERR is set).
  void log(LogLevel level, const QString& message);
  void info(const QString& message) { log(LogLevel::Info, message); }
  void warn(const QString& message) { log(LogLevel::Warning, message); }

  // The one way the studio shows an error: logs it, emits errorReported, then calls the
  // reporter: QMessageBox::critical by default; tests install one that records instead.
  using ErrorReporter = std::function<void(const QString& title, const QString& message)>;
  void reportError(const QString& title, const QString& message);
  void setErrorReporter(ErrorReporter reporter) { error_reporter_ = std::move(reporter); }

  // The one way the studio asks before destroying something (removing a model or a run): the
  // asker answers yes or no; QMessageBox::question by default, tests install their own.
  using ConfirmAsker = std::function<bool(const QString& title, const QString& question)>;
  bool confirm(const QString& title, const QString& question) { return confirm_asker_ && confirm_asker_(title, question); }
  void setConfirmAsker(ConfirmAsker asker) { confirm_asker_ = std::move(asker); }

 Q_SIGNALS:
  void chatModelsChanged();
  void settingsChanged();
  void logMessage(aqlm::studio::LogLevel level, const QString& message);
  void errorReported(const QString& title, const QString& message);
  void databaseChanged();

 private:
  StudioSettings load_settings() const;
  std::string database_fingerprint();

  store::RunDatabase database_;
  QTimer external_changes_;
  std::int64_t data_version_ = 0;
  std::string fingerprint_;
  std::filesystem::path database_path_;
  QVector<ChatModel> chat_models_;
  StudioSettings settings_;
  ErrorReporter error_reporter_;
  ConfirmAsker confirm_asker_;
};

// Default settings: the models cache folder, the CPU, all cores.
StudioSettings default_settings();

}  // namespace aqlm::studio
