#pragma once
// Start-up of the studio: open the run database (offering a fresh one when it is damaged,
// refusing one from a newer studio without touching it), then the main window.
#include <QString>

#include <filesystem>
#include <functional>
#include <optional>

#include "core/store/run_database.h"

class QApplication;

namespace aqlm::studio {

struct DatabasePrompts {
  // A yes/no question (QMessageBox::question in the app; tests answer it).
  std::function<bool(const QString& title, const QString& text)> ask;
  // An error the user must read before the studio quits.
  std::function<void(const QString& title, const QString& text)> tell;
};
DatabasePrompts message_box_prompts();

// nullopt: the studio cannot go on (the user declined a fresh database, or the file is from a
// newer schema / unreadable; `tell` has said why). A damaged file that the user agrees to
// replace is kept aside as <file>.corrupt-<time> and a fresh database is returned.
std::optional<store::RunDatabase> open_studio_database(const std::filesystem::path& file, const DatabasePrompts& prompts);

// The application: command line (--screenshots DIR MODEL renders the main views and quits),
// database, main window, event loop.
int run_studio(QApplication& app);

}  // namespace aqlm::studio
