#pragma once
// The model library (left dock): every model of the database with the runs made from it, and
// entries that could not be read with the reason. Models are added with the buttons or by
// dropping files and folders; reading a model happens off the UI thread.
#include <QFutureWatcher>
#include <QHash>
#include <QWidget>

#include <optional>

#include "app/studio/model_inspector.h"
#include "app/studio/studio_context.h"

class QLabel;
class QTreeWidget;
class QTreeWidgetItem;

namespace aqlm::studio {

class ModelLibraryView : public QWidget {
  Q_OBJECT
 public:
  explicit ModelLibraryView(StudioContext& context, QWidget* parent = nullptr);

  // Reads `path` in the background; on success adds it to the database (or refreshes its
  // row), else lists it as unreadable with the reason. modelAdded/modelRejected say which.
  void addModel(const QString& path);
  // The first start: the default model (SmolLM2-135M-Instruct in the models cache) when the
  // library is empty and the file is there.
  void addDefaultModelIfEmpty();
  void reload();

  std::optional<store::Id> selectedModel() const;
  void selectModel(store::Id id);
  // The inspection of a library model, once it is done (it starts when the model is listed).
  std::optional<ModelDescription> description(const QString& path) const;
  QStringList unreadableEntries() const;  // "path: reason"

  // The buttons' (and the File menu's) actions: a file or folder dialog, then addModel; and
  // removing the selected entry after the context's confirm().
  void chooseModelFile();
  void chooseModelFolder();
  void removeSelected();

 Q_SIGNALS:
  void modelSelected(qint64 model_id);
  void runActivated(qint64 run_id);  // double-click on a run
  void modelAdded(qint64 model_id);
  void modelRejected(const QString& path, const QString& reason);
  void descriptionReady(const QString& path);

 protected:
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;

 private:
  void inspect(const QString& path, bool add_when_done);
  void onInspected(const InspectionResult& result, bool add_when_done);
  void showDetails();

  StudioContext& context_;
  QTreeWidget* tree_;
  QLabel* details_;
  QHash<QString, ModelDescription> descriptions_;  // by absolute path
  QHash<QString, QString> unreadable_;             // path -> reason
  QSet<QString> pending_;
};

}  // namespace aqlm::studio
