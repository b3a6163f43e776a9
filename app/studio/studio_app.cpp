#include "app/studio/studio_app.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <QMessageBox>

#include "app/studio/main_window.h"
#include "app/studio/screenshots.h"
#include "app/studio/studio_context.h"

namespace aqlm::studio {

DatabasePrompts message_box_prompts() {
  DatabasePrompts prompts;
  prompts.ask = [](const QString& title, const QString& text) {
    return QMessageBox::question(nullptr, title, text, QMessageBox::Yes | QMessageBox::No) == QMessageBox::Yes;
  };
  prompts.tell = [](const QString& title, const QString& text) { QMessageBox::critical(nullptr, title, text); };
  return prompts;
}

std::optional<store::RunDatabase> open_studio_database(const std::filesystem::path& file, const DatabasePrompts& prompts) {
  const QString name = QString::fromStdString(file.string());
  try {
    return store::RunDatabase::open(file);
  } catch (const store::CorruptDatabaseError& error) {
    const bool fresh = prompts.ask(
        QObject::tr("The run database is damaged"),
        QObject::tr("%1\n\nStart with a fresh, empty database? The damaged file is kept beside it (renamed "
                    "%2.corrupt-<time>), so nothing is deleted.")
            .arg(QString::fromStdString(error.what()), name));
    if (!fresh) {
      prompts.tell(QObject::tr("AQLM Studio"), QObject::tr("The studio cannot start without its run database (%1).").arg(name));
      return std::nullopt;
    }
    try {
      store::RunDatabase::Recreated recreated = store::RunDatabase::move_aside_and_recreate(file);
      prompts.tell(QObject::tr("A fresh run database"),
                   QObject::tr("The damaged database was kept as %1.").arg(QString::fromStdString(recreated.corrupt_copy.string())));
      return std::move(recreated.database);
    } catch (const Error& again) {
      prompts.tell(QObject::tr("AQLM Studio"), QString::fromStdString(again.what()));
      return std::nullopt;
    }
  } catch (const Error& error) {
    // A newer schema, a foreign file, a folder that cannot be written: say it and touch nothing.
    prompts.tell(QObject::tr("AQLM Studio cannot open its run database"), QString::fromStdString(error.what()));
    return std::nullopt;
  }
}

int run_studio(QApplication& app) {
  QApplication::setApplicationName(QStringLiteral("AQLM Studio"));
  QApplication::setOrganizationName(QStringLiteral("aqlm-studio"));
  QApplication::setWindowIcon(QIcon(QStringLiteral(":/icons/aqlm-studio.png")));
  QCommandLineParser parser;
  parser.setApplicationDescription(QStringLiteral("Compress local LLMs with AQLM and chat with them"));
  parser.addHelpOption();
  QCommandLineOption screenshots(QStringLiteral("screenshots"),
                                 QStringLiteral("Render the main views into DIR (with two runs of --screenshot-model) and quit."),
                                 QStringLiteral("DIR"));
  QCommandLineOption model(QStringLiteral("screenshot-model"), QStringLiteral("The small model the screenshot runs compress."),
                           QStringLiteral("PATH"));
  QCommandLineOption calib(QStringLiteral("screenshot-text"), QStringLiteral("Calibration and evaluation text of those runs."),
                           QStringLiteral("FILE"));
  QCommandLineOption budget_model(QStringLiteral("screenshot-budget-model"),
                                  QStringLiteral("The model the wizard's bit-budget page shows (default: --screenshot-model)."),
                                  QStringLiteral("PATH"));
  parser.addOption(screenshots);
  parser.addOption(budget_model);
  parser.addOption(model);
  parser.addOption(calib);
  parser.process(app);

  std::optional<store::RunDatabase> database = open_studio_database(store::RunDatabase::default_path(), message_box_prompts());
  if (!database) return 1;
  StudioContext context(std::move(*database));
  MainWindow window(context);
  if (parser.isSet(screenshots)) {
    context.setErrorReporter([](const QString& title, const QString& message) {
      std::fprintf(stderr, "aqlm-studio: %s: %s\n", title.toLocal8Bit().constData(), message.toLocal8Bit().constData());
    });
    return render_screenshots(window, parser.value(screenshots), parser.value(model), parser.value(calib),
                              parser.value(budget_model));
  }
  window.show();
  return app.exec();
}

}  // namespace aqlm::studio
