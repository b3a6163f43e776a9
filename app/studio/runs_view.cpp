#include "app/studio/runs_view.h"

#include <QDateTime>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QPushButton>
#include <QTableWidget>
#include <QVBoxLayout>

#include "app/studio/system_monitor.h"

namespace aqlm::studio {

namespace {

const QStringList kColumns{QObject::tr("Run"),        QObject::tr("Model"),     QObject::tr("Method"),
                           QObject::tr("Config"),     QObject::tr("Status"),    QObject::tr("Bits/param"),
                           QObject::tr("Size"),       QObject::tr("Perplexity"), QObject::tr("Layers"),
                           QObject::tr("Mean rel. error"), QObject::tr("Layer time"), QObject::tr("Created")};

QTableWidgetItem* item(const QString& text, bool right = false) {
  auto* cell = new QTableWidgetItem(text);
  if (right) cell->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  return cell;
}

}  // namespace

RunsView::RunsView(StudioContext& context, RunController& controller, QWidget* parent)
    : QWidget(parent), context_(context), controller_(controller) {
  setObjectName(QStringLiteral("runsView"));
  table_ = new QTableWidget(0, int(kColumns.size()));
  table_->setObjectName(QStringLiteral("runsTable"));
  table_->setHorizontalHeaderLabels(kColumns);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->verticalHeader()->setVisible(false);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->setSortingEnabled(false);
  open_ = new QPushButton(tr("Open in dashboard"));
  open_->setObjectName(QStringLiteral("openRun"));
  resume_ = new QPushButton(tr("Resume"));
  resume_->setObjectName(QStringLiteral("resumeSelectedRun"));
  chat_ = new QPushButton(tr("Chat with this model"));
  chat_->setObjectName(QStringLiteral("chatWithRun"));
  remove_ = new QPushButton(tr("Delete from the list"));
  remove_->setObjectName(QStringLiteral("removeRun"));
  connect(open_, &QPushButton::clicked, this, [this] {
    if (const auto id = selectedRun()) Q_EMIT openRun(*id);
  });
  connect(table_, &QTableWidget::cellDoubleClicked, this, [this] {
    if (const auto id = selectedRun()) Q_EMIT openRun(*id);
  });
  connect(resume_, &QPushButton::clicked, this, [this] {
    const auto id = selectedRun();
    if (!id) return;
    try {
      controller_.resume(*id);
      Q_EMIT openRun(*id);
    } catch (const Error& error) {
      context_.reportError(tr("Resume run %1").arg(*id), QString::fromStdString(error.what()));
    }
  });
  connect(chat_, &QPushButton::clicked, this, [this] {
    const auto id = selectedRun();
    if (!id) return;
    if (const auto run = context_.database().find_run(*id)) Q_EMIT chatWith(QString::fromStdString(run->output_dir.string()));
  });
  connect(remove_, &QPushButton::clicked, this, [this] {
    const auto id = selectedRun();
    if (!id || controller_.activeRun() == id) return;
    if (!context_.confirm(tr("Delete run"), tr("Delete run %1 with its metrics and evaluations from the list? "
                                               "Its output folder stays on disk.").arg(*id)))
      return;
    context_.database().remove_run(*id);
    context_.info(tr("run %1 removed from the database (its output folder stays on disk)").arg(*id));
    context_.notifyDatabaseChanged();
  });
  connect(table_, &QTableWidget::itemSelectionChanged, this, &RunsView::updateButtons);
  connect(&context_, &StudioContext::databaseChanged, this, &RunsView::reload);
  connect(&controller_, &RunController::runStarted, this, &RunsView::reload);

  auto* buttons = new QHBoxLayout;
  buttons->addWidget(open_);
  buttons->addWidget(resume_);
  buttons->addWidget(chat_);
  buttons->addStretch();
  buttons->addWidget(remove_);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(table_);
  layout->addLayout(buttons);
  reload();
}

void RunsView::reload() {
  const std::optional<store::Id> selected = selectedRun();
  table_->setRowCount(0);
  store::RunDatabase& db = context_.database();
  for (const store::ModelSummary& model : db.list_models()) {
    for (const store::RunSummary& run : db.runs_of_model(model.id)) {
      const int row = table_->rowCount();
      table_->insertRow(row);
      auto* id = item(QString::number(run.id), true);
      id->setData(Qt::UserRole, qint64(run.id));
      table_->setItem(row, 0, id);
      table_->setItem(row, 1, item(QString::fromStdString(model.name)));
      table_->setItem(row, 2, item(QString(store::name(run.method)).toUpper()));
      table_->setItem(row, 3, item(QString::fromStdString(run.config)));
      auto* status = item(store::name(run.status));
      if (!run.error_message.empty()) status->setToolTip(QString::fromStdString(run.error_message));
      if (run.status == store::RunStatus::Failed) status->setForeground(QColor(170, 0, 0));
      table_->setItem(row, 4, status);
      const std::optional<double> bits = run.bits_measured ? run.bits_measured : run.bits_predicted;
      table_->setItem(row, 5, item(bits ? QString::number(*bits, 'f', 3) : QStringLiteral("–"), true));
      table_->setItem(row, 6, item(run.output_bytes ? format_bytes(double(*run.output_bytes)) : QStringLiteral("–"), true));
      QString ppl = QStringLiteral("–");
      for (const store::Evaluation& e : run.latest_evaluations)
        ppl = QStringLiteral("%1 (%2)").arg(e.perplexity, 0, 'f', 3).arg(QString::fromStdString(e.dataset));
      table_->setItem(row, 7, item(ppl, true));
      table_->setItem(row, 8, item(QString::number(run.layers_done), true));
      table_->setItem(row, 9, item(run.mean_relative_error ? QString::number(*run.mean_relative_error, 'e', 3) : QStringLiteral("–"), true));
      table_->setItem(row, 10, item(QStringLiteral("%1 s").arg(run.layer_seconds, 0, 'f', 1), true));
      table_->setItem(row, 11, item(QDateTime::fromMSecsSinceEpoch(run.created.time_since_epoch().count())
                                        .toString(QStringLiteral("yyyy-MM-dd HH:mm"))));
    }
  }
  if (selected) selectRun(*selected);
  updateButtons();
}

std::optional<store::Id> RunsView::selectedRun() const {
  const auto rows = table_->selectionModel()->selectedRows();
  if (rows.isEmpty()) return std::nullopt;
  return table_->item(rows.front().row(), 0)->data(Qt::UserRole).toLongLong();
}

void RunsView::selectRun(store::Id run_id) {
  for (int row = 0; row < table_->rowCount(); ++row)
    if (table_->item(row, 0)->data(Qt::UserRole).toLongLong() == run_id) table_->selectRow(row);
}

int RunsView::rowCount() const { return table_->rowCount(); }

QString RunsView::cellText(int row, const QString& column) const {
  const int index = int(kColumns.indexOf(column));
  return index >= 0 && table_->item(row, index) ? table_->item(row, index)->text() : QString();
}

void RunsView::updateButtons() {
  const auto id = selectedRun();
  std::optional<store::Run> run;
  if (id) run = context_.database().find_run(*id);
  open_->setEnabled(run.has_value());
  resume_->setEnabled(run && !controller_.isRunning() && run->status != store::RunStatus::Running &&
                      run->status != store::RunStatus::Finished);
  chat_->setEnabled(run && run->status == store::RunStatus::Finished && std::filesystem::exists(run->output_dir));
  remove_->setEnabled(run && controller_.activeRun() != id);
}

}  // namespace aqlm::studio
