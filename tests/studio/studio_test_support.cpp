#include "tests/studio/studio_test_support.h"

#include <QDir>

#include <cstdlib>

#include "app/studio/studio_app.h"

namespace aqlm::studio::test {

std::filesystem::path fresh_data_dir(const QString& name) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("aqlm-studio-test-" + name.toStdString());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "models");
  qputenv("AQLM_DATA_DIR", QByteArray::fromStdString(dir.string()));
  qputenv("AQLM_MODELS_DIR", QByteArray::fromStdString((dir / "models").string()));
  qputenv("AQLM_CLI", QByteArray(AQLM_BINARY_DIR "/bin/aqlm-cli"));
  return dir;
}

std::optional<std::filesystem::path> shared_file(const std::string& relative) {
  const char* env = std::getenv("AQLM_SHARED_DIR");
  const std::filesystem::path base = env ? std::filesystem::path(env) : std::filesystem::path(AQLM_SOURCE_DIR) / ".." / "shared";
  const std::filesystem::path file = base / relative;
  if (!std::filesystem::exists(file)) return std::nullopt;
  return std::filesystem::canonical(file);
}

std::unique_ptr<Studio> open_studio() {
  auto studio = std::make_unique<Studio>();
  DatabasePrompts prompts;
  prompts.ask = [](const QString&, const QString&) { return false; };
  prompts.tell = [raw = studio.get()](const QString& title, const QString& text) { raw->errors << title + ": " + text; };
  std::optional<store::RunDatabase> database = open_studio_database(store::RunDatabase::default_path(), prompts);
  if (!database) return nullptr;
  studio->context = std::make_unique<StudioContext>(std::move(*database));
  studio->context->setErrorReporter(
      [raw = studio.get()](const QString& title, const QString& message) { raw->errors << title + ": " + message; });
  studio->context->setConfirmAsker([raw = studio.get()](const QString& title, const QString& question) {
    raw->questions << title + ": " + question;
    return raw->answer;
  });
  studio->window = std::make_unique<MainWindow>(*studio->context);
  return studio;
}

}  // namespace aqlm::studio::test
