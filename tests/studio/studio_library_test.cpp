// The model library's removal: it asks first (through StudioContext::confirm, the dialog in the
// app), keeps the model when the answer is no, and the File menu's action is the same slot as
// the button.
#include <QAction>
#include <QMenuBar>
#include <QSignalSpy>
#include <QTest>

#include "app/studio/model_library_view.h"
#include "tests/studio/studio_test_support.h"

using namespace aqlm;
using namespace aqlm::studio;

namespace {

QAction* menu_action(QMainWindow& window, const QString& text) {
  for (QAction* action : window.menuBar()->findChildren<QAction*>())
    if (action->text() == text) return action;
  return nullptr;
}

}  // namespace

class StudioLibraryTest : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void removingAModelAsksFirst() {
    const auto model = test::shared_file("models/stories260K/stories260K.bin");
    if (!model) QSKIP("shared/models/stories260K is absent");
    test::fresh_data_dir(QStringLiteral("library-remove"));
    auto studio = test::open_studio();
    QVERIFY(studio);
    ModelLibraryView& library = *studio->window->library();
    QSignalSpy added(&library, &ModelLibraryView::modelAdded);
    library.addModel(QString::fromStdString(model->string()));
    QVERIFY(added.wait(30000));
    const store::Id id = added.first().first().toLongLong();
    library.selectModel(id);

    studio->answer = false;  // "Cancel": nothing happens
    library.removeSelected();
    QCOMPARE(studio->questions.size(), 1);
    QVERIFY2(studio->questions.front().startsWith(QStringLiteral("Remove model: Remove stories260K from the library?")),
             qPrintable(studio->questions.front()));
    QVERIFY(studio->context->database().find_model(id));

    studio->answer = true;  // "Yes", through the File menu
    QAction* remove = menu_action(*studio->window, QStringLiteral("&Remove selected model…"));
    QVERIFY(remove);
    remove->trigger();
    QCOMPARE(studio->questions.size(), 2);
    QVERIFY(!studio->context->database().find_model(id));
    QVERIFY(std::filesystem::exists(*model));  // the file stays
    QVERIFY(studio->errors.isEmpty());
  }
};

QTEST_MAIN(StudioLibraryTest)
#include "studio_library_test.moc"
