#include "app/studio/model_library_view.h"

#include <QDragEnterEvent>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMimeData>
#include <QPushButton>
#include <QTreeWidget>
#include <QVBoxLayout>

#include "app/studio/system_monitor.h"
#include "core/common/paths.h"

namespace aqlm::studio {

namespace {

enum Role { KindRole = Qt::UserRole, IdRole, PathRole };
enum Kind { ModelItem, RunItem, UnreadableItem };

QString absolute(const QString& path) {
  return QString::fromStdString(std::filesystem::absolute(path.toStdString()).lexically_normal().string());
}

QString run_line(const store::RunSummary& run) {
  // A finished run is the usual case: only other states are spelled out, to keep the line short.
  QString line = QStringLiteral("%1 %2").arg(QString(store::name(run.method)).toUpper(), QString::fromStdString(run.config));
  if (run.status != store::RunStatus::Finished) line += QStringLiteral(" · %1").arg(store::name(run.status));
  const std::optional<double> bits = run.bits_measured ? run.bits_measured : run.bits_predicted;
  if (bits) line += QStringLiteral(" · %1 bits").arg(*bits, 0, 'f', 2);
  for (const store::Evaluation& e : run.latest_evaluations)
    line += QStringLiteral(" · ppl %1").arg(e.perplexity, 0, 'f', 2);
  return line;
}

}  // namespace

ModelLibraryView::ModelLibraryView(StudioContext& context, QWidget* parent) : QWidget(parent), context_(context) {
  setObjectName(QStringLiteral("modelLibrary"));
  setAcceptDrops(true);
  tree_ = new QTreeWidget;
  tree_->setObjectName(QStringLiteral("modelTree"));
  tree_->setColumnCount(2);
  tree_->setHeaderLabels({tr("Model"), tr("What")});
  tree_->header()->setSectionResizeMode(0, QHeaderView::ResizeToContents);
  tree_->setAlternatingRowColors(true);
  tree_->setToolTip(tr("Drop a GGUF file, a llama2.c .bin or a Hugging Face / AQLM folder here to add it"));
  details_ = new QLabel;
  details_->setObjectName(QStringLiteral("modelDetails"));
  details_->setWordWrap(true);
  details_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  details_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
  details_->setMinimumHeight(120);

  auto* add_file = new QPushButton(tr("Add file…"));
  add_file->setObjectName(QStringLiteral("addModelFile"));
  auto* add_folder = new QPushButton(tr("Add folder…"));
  add_folder->setObjectName(QStringLiteral("addModelFolder"));
  auto* remove = new QPushButton(tr("Remove"));
  remove->setObjectName(QStringLiteral("removeModel"));
  connect(add_file, &QPushButton::clicked, this, &ModelLibraryView::chooseModelFile);
  connect(add_folder, &QPushButton::clicked, this, &ModelLibraryView::chooseModelFolder);
  connect(remove, &QPushButton::clicked, this, &ModelLibraryView::removeSelected);
  connect(tree_, &QTreeWidget::currentItemChanged, this, [this] {
    showDetails();
    if (const auto id = selectedModel()) Q_EMIT modelSelected(*id);
  });
  connect(tree_, &QTreeWidget::itemDoubleClicked, this, [this](QTreeWidgetItem* item) {
    if (item->data(0, KindRole).toInt() == RunItem) Q_EMIT runActivated(item->data(0, IdRole).toLongLong());
  });
  connect(&context_, &StudioContext::databaseChanged, this, &ModelLibraryView::reload);

  auto* buttons = new QHBoxLayout;
  buttons->addWidget(add_file);
  buttons->addWidget(add_folder);
  buttons->addWidget(remove);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(buttons);
  layout->addWidget(tree_, 3);
  layout->addWidget(details_, 1);
  reload();
}

void ModelLibraryView::reload() {
  const std::optional<store::Id> selected = selectedModel();
  tree_->clear();
  std::vector<store::ModelSummary> models;
  try {
    models = context_.database().list_models();
  } catch (const Error& error) {
    context_.reportError(tr("Model library"), QString::fromStdString(error.what()));
  }
  for (const store::ModelSummary& model : models) {
    const QString path = QString::fromStdString(model.path.string());
    auto* item = new QTreeWidgetItem(tree_);
    item->setText(0, QString::fromStdString(model.name));
    item->setData(0, KindRole, ModelItem);
    item->setData(0, IdRole, qint64(model.id));
    item->setData(0, PathRole, path);
    item->setToolTip(0, path);
    if (!std::filesystem::exists(model.path)) {
      item->setText(1, tr("missing: %1 no longer exists").arg(path));
      item->setForeground(1, QColor(170, 0, 0));
    } else {
      item->setText(1, QStringLiteral("%1 · %2 M · %3").arg(QString::fromStdString(model.architecture))
                           .arg(double(model.parameters) / 1e6, 0, 'f', 1)
                           .arg(QString::fromStdString(model.dtype)));
      if (!descriptions_.contains(path) && !pending_.contains(path)) inspect(path, false);
    }
    for (const store::RunSummary& run : context_.database().runs_of_model(model.id)) {
      auto* child = new QTreeWidgetItem(item);
      child->setText(0, tr("run %1").arg(run.id));
      child->setText(1, run_line(run));
      child->setData(0, KindRole, RunItem);
      child->setData(0, IdRole, qint64(run.id));
      child->setToolTip(1, run.error_message.empty() ? child->text(1) : QString::fromStdString(run.error_message));
      if (run.status == store::RunStatus::Failed) child->setForeground(1, QColor(170, 0, 0));
    }
    item->setExpanded(true);
  }
  for (auto it = unreadable_.cbegin(); it != unreadable_.cend(); ++it) {
    auto* item = new QTreeWidgetItem(tree_);
    item->setText(0, QFileInfo(it.key()).fileName());
    item->setText(1, tr("unreadable: %1").arg(it.value()));
    item->setToolTip(1, it.value());
    item->setForeground(1, QColor(170, 0, 0));
    item->setData(0, KindRole, UnreadableItem);
    item->setData(0, PathRole, it.key());
  }
  if (selected) selectModel(*selected);
  else if (tree_->topLevelItemCount() > 0) tree_->setCurrentItem(tree_->topLevelItem(0));
  showDetails();
}

void ModelLibraryView::addModel(const QString& path) {
  const QString clean = absolute(path);
  context_.info(tr("reading %1").arg(clean));
  inspect(clean, true);
}

void ModelLibraryView::addDefaultModelIfEmpty() {
  if (!context_.database().list_models().empty()) return;
  const auto path = models_cache_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf";
  if (std::filesystem::exists(path)) addModel(QString::fromStdString(path.string()));
}

void ModelLibraryView::inspect(const QString& path, bool add_when_done) {
  pending_.insert(path);
  auto* watcher = new QFutureWatcher<InspectionResult>(this);
  connect(watcher, &QFutureWatcher<InspectionResult>::finished, this, [this, watcher, add_when_done] {
    onInspected(watcher->result(), add_when_done);
    watcher->deleteLater();
  });
  watcher->setFuture(inspect_async(path));
}

void ModelLibraryView::onInspected(const InspectionResult& result, bool add_when_done) {
  pending_.remove(result.path);
  if (!result.description) {
    unreadable_.insert(result.path, result.error);
    context_.warn(tr("not added: %1").arg(result.error));
    reload();
    Q_EMIT modelRejected(result.path, result.error);
    return;
  }
  const QString path = QString::fromStdString(result.description->info.path.string());
  descriptions_.insert(path, *result.description);
  unreadable_.remove(result.path);
  Q_EMIT descriptionReady(path);
  if (!add_when_done) {
    showDetails();
    return;
  }
  try {
    const store::Id id = context_.database().add_model(result.description->info);
    context_.info(tr("added %1 to the library").arg(path));
    context_.notifyDatabaseChanged();
    selectModel(id);
    Q_EMIT modelAdded(id);
  } catch (const Error& error) {
    context_.reportError(tr("Adding a model"), QString::fromStdString(error.what()));
  }
}

std::optional<store::Id> ModelLibraryView::selectedModel() const {
  QTreeWidgetItem* item = tree_->currentItem();
  if (!item) return std::nullopt;
  if (item->data(0, KindRole).toInt() == RunItem) item = item->parent();
  if (!item || item->data(0, KindRole).toInt() != ModelItem) return std::nullopt;
  return item->data(0, IdRole).toLongLong();
}

void ModelLibraryView::selectModel(store::Id id) {
  for (int i = 0; i < tree_->topLevelItemCount(); ++i) {
    QTreeWidgetItem* item = tree_->topLevelItem(i);
    if (item->data(0, KindRole).toInt() == ModelItem && item->data(0, IdRole).toLongLong() == id) {
      tree_->setCurrentItem(item);
      return;
    }
  }
}

std::optional<ModelDescription> ModelLibraryView::description(const QString& path) const {
  const auto it = descriptions_.constFind(path);
  if (it == descriptions_.cend()) return std::nullopt;
  return *it;
}

QStringList ModelLibraryView::unreadableEntries() const {
  QStringList entries;
  for (auto it = unreadable_.cbegin(); it != unreadable_.cend(); ++it) entries << it.key() + ": " + it.value();
  return entries;
}

void ModelLibraryView::showDetails() {
  QTreeWidgetItem* item = tree_->currentItem();
  if (!item) {
    details_->setText(tr("No model yet: add a GGUF file, a llama2.c .bin or a Hugging Face folder."));
    return;
  }
  if (item->data(0, KindRole).toInt() == RunItem) item = item->parent();
  const QString path = item->data(0, PathRole).toString();
  if (item->data(0, KindRole).toInt() == UnreadableItem) {
    details_->setText(tr("<b>%1</b><br>cannot be used: %2").arg(path.toHtmlEscaped(), unreadable_.value(path).toHtmlEscaped()));
    return;
  }
  const std::optional<store::Model> model = context_.database().find_model(item->data(0, IdRole).toLongLong());
  if (!model) return;
  QString html = tr("<b>%1</b><br>%2<table>").arg(QString::fromStdString(model->name).toHtmlEscaped(), path.toHtmlEscaped());
  auto row = [&html](const QString& key, const QString& value) {
    html += QStringLiteral("<tr><td>%1&nbsp;&nbsp;</td><td>%2</td></tr>").arg(key, value.toHtmlEscaped());
  };
  row(tr("Architecture"), QString::fromStdString(model->architecture));
  row(tr("Parameters"), tr("%1 M").arg(double(model->parameters) / 1e6, 0, 'f', 2));
  row(tr("Format / dtype"), QStringLiteral("%1 / %2").arg(QString::fromStdString(model->format), QString::fromStdString(model->dtype)));
  row(tr("Size on disk"), format_bytes(double(model->size_bytes)));
  if (const auto d = description(path)) {
    row(tr("Layers"), tr("%1 blocks, hidden %2, FFN %3").arg(d->config.num_layers).arg(d->config.hidden_size).arg(d->config.intermediate_size));
    row(tr("Memory to run"), tr("%1 (CPU, %2-token context)").arg(format_bytes(double(d->memory_bytes)))
                                 .arg(d->memory_context));
  } else if (!std::filesystem::exists(model->path)) {
    row(tr("Status"), tr("the file is gone; remove it or put it back"));
  } else {
    row(tr("Memory to run"), tr("reading the model…"));
  }
  const auto runs = context_.database().runs_of_model(model->id);
  int finished = 0;
  for (const auto& run : runs) finished += run.status == store::RunStatus::Finished;
  row(tr("Runs"), tr("%1 (%2 finished)").arg(runs.size()).arg(finished));
  details_->setText(html + QStringLiteral("</table>"));
}

void ModelLibraryView::chooseModelFile() {
  const QString file = QFileDialog::getOpenFileName(this, tr("Add a model file"), context_.settings().modelsFolder,
                                                    tr("Models (*.gguf *.bin);;All files (*)"));
  if (!file.isEmpty()) addModel(file);
}

void ModelLibraryView::chooseModelFolder() {
  const QString dir = QFileDialog::getExistingDirectory(this, tr("Add a Hugging Face or AQLM model folder"),
                                                        context_.settings().modelsFolder);
  if (!dir.isEmpty()) addModel(dir);
}

void ModelLibraryView::removeSelected() {
  QTreeWidgetItem* item = tree_->currentItem();
  if (!item) return;
  if (item->data(0, KindRole).toInt() == UnreadableItem) {
    unreadable_.remove(item->data(0, PathRole).toString());
    reload();
    return;
  }
  if (const auto id = selectedModel()) {
    const auto model = context_.database().find_model(*id);
    if (!model) return;
    const std::size_t runs = context_.database().runs_of_model(*id).size();
    const QString what = runs == 0 ? tr("Remove %1 from the library?")
                                   : runs == 1 ? tr("Remove %1 from the library, with its run and the run's metrics?")
                                               : tr("Remove %1 from the library, with its %2 runs and their metrics?").arg("%1").arg(runs);
    const QString question = what.arg(QString::fromStdString(model->name)) +
                             tr(" Its files and the runs' output folders stay on disk.");
    if (!context_.confirm(tr("Remove model"), question)) return;
    context_.database().remove_model(*id);
    context_.info(tr("removed model %1 (its files stay on disk)").arg(*id));
    context_.notifyDatabaseChanged();
  }
}

void ModelLibraryView::dragEnterEvent(QDragEnterEvent* event) {
  if (event->mimeData()->hasUrls()) event->acceptProposedAction();
}

void ModelLibraryView::dropEvent(QDropEvent* event) {
  for (const QUrl& url : event->mimeData()->urls())
    if (url.isLocalFile()) addModel(url.toLocalFile());
  event->acceptProposedAction();
}

}  // namespace aqlm::studio
