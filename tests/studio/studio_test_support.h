#pragma once
// Shared set-up of the studio's GUI tests: a fresh data folder per test (AQLM_DATA_DIR, so the
// user's database and settings are never touched), aqlm-cli from this build, error dialogs
// recorded instead of shown, and the shared CI model.
#include <QString>
#include <QStringList>

#include <filesystem>
#include <memory>
#include <optional>

#include "app/studio/main_window.h"
#include "app/studio/studio_context.h"

namespace aqlm::studio::test {

// A fresh, empty folder under the system temp folder, set as AQLM_DATA_DIR (and AQLM_MODELS_DIR,
// so the default model is not added behind the test's back).
std::filesystem::path fresh_data_dir(const QString& name);
// ../shared/<relative>, or nullopt when the shared folder is absent.
std::optional<std::filesystem::path> shared_file(const std::string& relative);

// A studio as the application builds it (context + main window) on the current data folder,
// recording the errors it reports and the confirmations it asks for (answered with `answer`).
struct Studio {
  std::unique_ptr<StudioContext> context;
  std::unique_ptr<MainWindow> window;
  QStringList errors;     // "title: message"
  QStringList questions;  // "title: question" asked through StudioContext::confirm
  bool answer = false;    // what confirm() answers
};
std::unique_ptr<Studio> open_studio();

}  // namespace aqlm::studio::test
