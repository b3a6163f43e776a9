#include "app/studio/chat/chat_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QKeyEvent>
#include <QLabel>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSaveFile>
#include <QScrollArea>
#include <QSplitter>
#include <QVBoxLayout>

#include "app/studio/chat/chat_conversation.h"
#include "app/studio/chat/chat_markdown.h"
#include "app/studio/chat/chat_settings_panel.h"
#include "app/studio/chat/chat_transcript.h"
#include "core/common/error.h"

#include <algorithm>

namespace aqlm::studio {

namespace {

QString clean_path(const QString& path) {
  return path.isEmpty() ? path : QDir::cleanPath(QFileInfo(path).absoluteFilePath());
}

// Sends on Enter, keeps Shift+Enter for a new line.
class EnterToSend : public QObject {
 public:
  EnterToSend(QObject* parent, std::function<void()> send) : QObject(parent), send_(std::move(send)) {}
  bool eventFilter(QObject* watched, QEvent* event) override {
    if (event->type() == QEvent::KeyPress) {
      auto* key = static_cast<QKeyEvent*>(event);
      if ((key->key() == Qt::Key_Return || key->key() == Qt::Key_Enter) && !(key->modifiers() & Qt::ShiftModifier)) {
        send_();
        return true;
      }
    }
    return QObject::eventFilter(watched, event);
  }

 private:
  std::function<void()> send_;
};

}  // namespace

ChatView::ChatView(StudioContext& ctx, QWidget* parent) : QWidget(parent), ctx_(ctx) {
  setObjectName(QStringLiteral("chatView"));
  settings_ = new ChatSettingsPanel;

  auto* center = new QWidget;
  auto* center_layout = new QVBoxLayout(center);
  center_layout->setContentsMargins(0, 0, 0, 0);
  center_layout->addWidget(buildTopBar());
  auto* panes = new QSplitter(Qt::Horizontal);
  panes->setChildrenCollapsible(false);
  for (int side = 0; side < kSides; ++side) {
    Side& s = sides_[size_t(side)];
    auto* pane = new QWidget;
    auto* layout = new QVBoxLayout(pane);
    layout->setContentsMargins(0, 0, 0, 0);
    auto* picker_row = new QHBoxLayout;
    auto* label = new QLabel(side == 0 ? tr("Model A") : tr("Model B"));
    s.picker = new QComboBox;
    s.picker->setObjectName(QStringLiteral("chatModel%1").arg(sideName(side)));
    s.picker->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    s.picker->setMinimumContentsLength(24);
    picker_row->addWidget(label);
    picker_row->addWidget(s.picker, 1);
    layout->addLayout(picker_row);
    s.status = new QLabel;
    s.status->setObjectName(QStringLiteral("chatStatus%1").arg(sideName(side)));
    s.status->setWordWrap(true);
    s.status->setTextFormat(Qt::PlainText);
    layout->addWidget(s.status);
    s.transcript = new ChatTranscript;
    s.transcript->setObjectName(QStringLiteral("chatTranscript%1").arg(sideName(side)));
    s.transcript->setPlaceholder(tr("Choose a model, then write a message below. Replies stream here."));
    layout->addWidget(s.transcript, 1);
    s.context = new QProgressBar;
    s.context->setObjectName(QStringLiteral("chatContext%1").arg(sideName(side)));
    s.context->setRange(0, 1);
    s.context->setValue(0);
    s.context->setFormat(tr("context: no model"));
    s.context->setToolTip(tr("How much of the model's context window the conversation fills, in tokens"));
    layout->addWidget(s.context);
    panes->addWidget(pane);
    if (side == 1) side_b_controls_ = pane;
    s.runner = new ChatModelRunner(this);
    connectRunner(side);
    connect(s.picker, &QComboBox::activated, this, [this, side] { onPickerChanged(side); });
  }
  side_b_controls_->hide();
  center_layout->addWidget(panes, 1);
  notice_ = new QLabel;
  notice_->setObjectName(QStringLiteral("chatNotice"));
  notice_->setWordWrap(true);
  notice_->setTextFormat(Qt::PlainText);
  notice_->hide();
  center_layout->addWidget(notice_);
  center_layout->addWidget(buildInputRow());

  auto* settings_scroll = new QScrollArea;
  settings_scroll->setWidget(settings_);
  settings_scroll->setWidgetResizable(true);
  settings_scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  settings_scroll->setFrameShape(QFrame::NoFrame);
  settings_scroll->setMinimumWidth(260);

  auto* splitter = new QSplitter(Qt::Horizontal);
  splitter->addWidget(buildConversationList());
  splitter->addWidget(center);
  splitter->addWidget(settings_scroll);
  splitter->setStretchFactor(0, 0);
  splitter->setStretchFactor(1, 1);
  splitter->setStretchFactor(2, 0);
  splitter->setSizes({220, 800, 280});
  auto* root = new QHBoxLayout(this);
  root->setContentsMargins(6, 6, 6, 6);
  root->addWidget(splitter);

  connect(&ctx_, &StudioContext::chatModelsChanged, this, &ChatView::fillPickers);
  connect(&ctx_, &StudioContext::databaseChanged, this, &ChatView::reloadConversationList);
  fillPickers();
  reloadConversationList();
  for (int side = 0; side < kSides; ++side) showStatus(side);
  updateButtons();
}

ChatView::~ChatView() {
  // Runners first: each stops its reply and joins its thread before the widgets go.
  for (Side& s : sides_) {
    s.runner->stop();
    delete s.runner;
    s.runner = nullptr;
  }
}

QString ChatView::sideName(int side) { return side == 0 ? QStringLiteral("A") : QStringLiteral("B"); }

// ------------------------------------------------------------------ layout

QWidget* ChatView::buildTopBar() {
  auto* bar = new QWidget;
  auto* layout = new QHBoxLayout(bar);
  layout->setContentsMargins(0, 0, 0, 0);
  ab_ = new QCheckBox(tr("Compare two models (A/B)"));
  ab_->setObjectName(QStringLiteral("chatAB"));
  ab_->setToolTip(tr("Both models answer every message, A then B, each in its own column"));
  connect(ab_, &QCheckBox::clicked, this, [this](bool on) { setABEnabled(on); });
  layout->addWidget(ab_);
  layout->addStretch(1);
  return bar;
}

QWidget* ChatView::buildConversationList() {
  auto* box = new QWidget;
  auto* layout = new QVBoxLayout(box);
  layout->setContentsMargins(0, 0, 0, 0);
  auto* title = new QLabel(tr("Conversations"));
  title->setStyleSheet(QStringLiteral("font-weight: 600;"));
  layout->addWidget(title);
  conversations_ = new QListWidget;
  conversations_->setObjectName(QStringLiteral("chatConversations"));
  conversations_->setWordWrap(true);
  conversations_->setMinimumWidth(180);
  connect(conversations_, &QListWidget::itemClicked, this, [this](QListWidgetItem* item) {
    const store::Id id = item->data(Qt::UserRole).toLongLong();
    if (id != sides_[0].conversation) openConversation(id);
  });
  layout->addWidget(conversations_, 1);
  auto* buttons = new QHBoxLayout;
  auto* fresh = new QPushButton(tr("New"));
  fresh->setObjectName(QStringLiteral("chatNew"));
  fresh->setToolTip(tr("Start a new conversation (Ctrl+Shift+N)"));
  fresh->setShortcut(QKeySequence(tr("Ctrl+Shift+N")));
  connect(fresh, &QPushButton::clicked, this, &ChatView::newConversation);
  export_ = new QPushButton(tr("Export…"));
  export_->setObjectName(QStringLiteral("chatExport"));
  export_->setToolTip(tr("Save the conversation as a Markdown file"));
  connect(export_, &QPushButton::clicked, this, [this] {
    const auto record = sides_[0].conversation ? load_chat_conversation(ctx_.database(), *sides_[0].conversation)
                                               : std::nullopt;
    const QString suggested = QDir(ctx_.settings().modelsFolder)
                                  .filePath((record ? record->title : tr("conversation")) + QStringLiteral(".md"));
    const QString file = QFileDialog::getSaveFileName(this, tr("Export the conversation"), suggested,
                                                      tr("Markdown (*.md)"));
    if (!file.isEmpty()) exportMarkdown(file);
  });
  delete_ = new QPushButton(tr("Delete"));
  delete_->setObjectName(QStringLiteral("chatDelete"));
  connect(delete_, &QPushButton::clicked, this, [this] {
    QListWidgetItem* item = conversations_->currentItem();
    if (!item || busy()) return;
    const store::Id id = item->data(Qt::UserRole).toLongLong();
    try {
      remove_chat_conversation(ctx_.database(), id);
    } catch (const Error& e) {
      ctx_.reportError(tr("Chat"), QString::fromStdString(e.what()));
    }
    if (sides_[0].conversation == id) newConversation();
    reloadConversationList();
  });
  buttons->addWidget(fresh);
  buttons->addWidget(export_);
  buttons->addWidget(delete_);
  layout->addLayout(buttons);
  return box;
}

QWidget* ChatView::buildInputRow() {
  auto* row = new QWidget;
  auto* layout = new QHBoxLayout(row);
  layout->setContentsMargins(0, 0, 0, 0);
  input_ = new QPlainTextEdit;
  input_->setObjectName(QStringLiteral("chatInput"));
  input_->setPlaceholderText(tr("Message (Enter sends, Shift+Enter starts a new line)"));
  input_->setMaximumHeight(90);
  input_->installEventFilter(new EnterToSend(input_, [this] { send(input_->toPlainText()); }));
  layout->addWidget(input_, 1);
  auto* buttons = new QVBoxLayout;
  send_ = new QPushButton(tr("Send"));
  send_->setObjectName(QStringLiteral("chatSend"));
  send_->setDefault(true);
  connect(send_, &QPushButton::clicked, this, [this] { send(input_->toPlainText()); });
  stop_ = new QPushButton(tr("Stop"));
  stop_->setObjectName(QStringLiteral("chatStop"));
  stop_->setShortcut(QKeySequence(Qt::Key_Escape));
  connect(stop_, &QPushButton::clicked, this, &ChatView::stop);
  regenerate_ = new QPushButton(tr("Regenerate"));
  regenerate_->setObjectName(QStringLiteral("chatRegenerate"));
  regenerate_->setToolTip(tr("Replace the last reply with a new one"));
  connect(regenerate_, &QPushButton::clicked, this, &ChatView::regenerate);
  buttons->addWidget(send_);
  buttons->addWidget(stop_);
  buttons->addWidget(regenerate_);
  layout->addLayout(buttons);
  return row;
}

void ChatView::connectRunner(int side) {
  ChatModelRunner* runner = sides_[size_t(side)].runner;
  connect(runner, &ChatModelRunner::stateChanged, this, [this, side] {
    showStatus(side);
    updateButtons();
  });
  connect(runner, &ChatModelRunner::loaded, this, [this, side](const ChatModelInfo& info) {
    updateContext(side, 0, info.contextLength);
    ctx_.info(tr("Chat: loaded %1 (%2) in %3 s").arg(info.path, info.description).arg(info.loadSeconds, 0, 'f', 2));
    Q_EMIT modelLoaded(side);
  });
  connect(runner, &ChatModelRunner::loadFailed, this, [this, side](const QString&, const QString& error) {
    sides_[size_t(side)].context->setFormat(tr("context: no model"));
    ctx_.reportError(tr("Chat: the model could not be loaded"), error);
    Q_EMIT modelFailed(side, error);
  });
  connect(runner, &ChatModelRunner::piece, this, [this, side](const QString& piece) { onPiece(side, piece); });
  connect(runner, &ChatModelRunner::finished, this,
          [this, side](const ChatReplyResult& result) { onFinished(side, result); });
  connect(runner, &ChatModelRunner::failed, this, [this, side](const QString& error) { onFailed(side, error); });
}

// ------------------------------------------------------------------ models

void ChatView::fillPickers() {
  const QVector<ChatModel> library = ctx_.chatModels();
  std::vector<ChatModel> models(library.begin(), library.end());
  for (const ChatModel& extra : extra_models_) {
    if (std::none_of(models.begin(), models.end(),
                     [&](const ChatModel& m) { return clean_path(m.path) == clean_path(extra.path); }))
      models.push_back(extra);
  }
  for (Side& s : sides_) {
    const QString current = s.picker->currentData().toString();
    const QSignalBlocker block(s.picker);
    s.picker->clear();
    s.picker->addItem(models.empty() ? tr("No models yet: add one in the Models panel") : tr("Choose a model…"),
                      QString());
    for (const ChatModel& m : models) {
      s.picker->addItem(m.displayName, m.path);
      s.picker->setItemData(s.picker->count() - 1, m.detail.isEmpty() ? m.path : m.detail + QStringLiteral("\n") + m.path,
                            Qt::ToolTipRole);
    }
    int index = 0;
    for (int i = 1; i < s.picker->count(); ++i) {
      if (clean_path(s.picker->itemData(i).toString()) == clean_path(current)) index = i;
    }
    s.picker->setCurrentIndex(index);
  }
}

int ChatView::pickerIndexOf(int side, const QString& path) const {
  const QComboBox* picker = sides_[size_t(side)].picker;
  for (int i = 1; i < picker->count(); ++i) {
    if (clean_path(picker->itemData(i).toString()) == clean_path(path)) return i;
  }
  return -1;
}

std::optional<ChatModel> ChatView::selectedModel(int side) const {
  const QString path = sides_[size_t(side)].picker->currentData().toString();
  if (path.isEmpty()) return std::nullopt;
  for (const ChatModel& m : ctx_.chatModels()) {
    if (clean_path(m.path) == clean_path(path)) return m;
  }
  for (const ChatModel& m : extra_models_) {
    if (clean_path(m.path) == clean_path(path)) return m;
  }
  return std::nullopt;
}

void ChatView::pickModel(int side, const QString& path) {
  if (pickerIndexOf(side, path) < 0) {
    ChatModel extra;
    extra.path = path;
    extra.displayName = QFileInfo(path).fileName();
    extra.detail = tr("not in the model library");
    extra_models_.push_back(extra);
    fillPickers();
  }
  const int index = pickerIndexOf(side, path);
  if (index != sides_[size_t(side)].picker->currentIndex()) {
    sides_[size_t(side)].picker->setCurrentIndex(index);
    onPickerChanged(side);
  } else {
    loadSelected(side);
  }
}

void ChatView::selectModel(const QString& path) {
  if (busy()) {  // the turn ends first (Stop keeps what was written), then the model changes
    pending_models_[0] = path;
    stop();
    return;
  }
  pickModel(0, path);
}

void ChatView::selectModelB(const QString& path) {
  if (busy()) {
    pending_models_[1] = path;
    stop();
    return;
  }
  setABEnabled(true);
  pickModel(1, path);
}

void ChatView::onPickerChanged(int side) {
  // A conversation belongs to the models it was held with: another model starts a new one.
  const Side& s = sides_[size_t(side)];
  const bool other_model = clean_path(s.picker->currentData().toString()) != clean_path(s.runner->path());
  const bool has_messages = std::any_of(sides_.begin(), sides_.end(), [](const Side& x) { return x.conversation.has_value(); });
  if (other_model && has_messages && !busy()) newConversation();
  loadSelected(side);
}

void ChatView::loadSelected(int side) {
  Side& s = sides_[size_t(side)];
  const QString path = s.picker->currentData().toString();
  if (path.isEmpty()) return;
  const ChatModelRunner::State state = s.runner->state();
  const bool same = clean_path(s.runner->path()) == clean_path(path);
  if (same && state != ChatModelRunner::State::Failed && state != ChatModelRunner::State::Empty) return;
  s.runner->load(path, engineOptions());
  setNotice({});
}

EngineOptions ChatView::engineOptions() const {
  const StudioSettings settings = ctx_.settings();
  EngineOptions options;
  options.threads = settings.threads;
  options.device = settings.defaultDevice.startsWith(QStringLiteral("cuda")) ? Device::Cuda : Device::Cpu;
  return options;
}

void ChatView::showStatus(int side) {
  const Side& s = sides_[size_t(side)];
  const ChatModelRunner& r = *s.runner;
  QString text;
  QString style;
  switch (r.state()) {
    case ChatModelRunner::State::Empty: text = tr("No model loaded."); break;
    case ChatModelRunner::State::Loading: text = tr("Loading %1…").arg(QFileInfo(r.path()).fileName()); break;
    case ChatModelRunner::State::Ready:
      text = tr("%1 · context %2 tokens").arg(r.info().description).arg(r.info().contextLength);
      break;
    case ChatModelRunner::State::Generating: text = tr("Generating… (%1)").arg(r.info().description); break;
    case ChatModelRunner::State::Failed:
      text = tr("Could not load: %1").arg(r.error());
      style = QStringLiteral("color: #b00020;");
      break;
  }
  s.status->setText(text);
  s.status->setStyleSheet(style);
}

QString ChatView::statusText(int side) const { return sides_[size_t(side)].status->text(); }
QString ChatView::contextText(int side) const { return sides_[size_t(side)].context->text(); }

// ------------------------------------------------------------------ A/B

void ChatView::setABEnabled(bool enabled) {
  if (busy()) {  // a turn's sides are fixed while it runs
    ab_->setChecked(ab_enabled_);
    return;
  }
  const bool changed = enabled != ab_enabled_;
  ab_enabled_ = enabled;
  ab_->setChecked(enabled);
  side_b_controls_->setVisible(enabled);
  if (changed && sides_[0].conversation) newConversation();  // the conversation had the other number of models
  if (enabled) loadSelected(1);
  updateButtons();
}

std::vector<int> ChatView::activeSides() const {
  if (abEnabled()) return {0, 1};
  return {0};
}

// ------------------------------------------------------------------ conversations

void ChatView::newConversation() {
  if (busy()) return;
  for (int side = 0; side < kSides; ++side) {
    Side& s = sides_[size_t(side)];
    s.conversation.reset();
    s.messages.clear();
    s.last_stats.reset();
    rebuildTranscript(side);
    if (s.runner->state() == ChatModelRunner::State::Ready) updateContext(side, 0, s.runner->info().contextLength);
  }
  conversations_->clearSelection();
  conversations_->setCurrentItem(nullptr);
  setNotice({});
  updateButtons();
}

bool ChatView::openConversation(store::Id id) {
  if (busy()) return false;
  std::optional<ChatConversationRecord> record;
  try {
    record = load_chat_conversation(ctx_.database(), id);
  } catch (const Error& e) {
    ctx_.reportError(tr("Chat: the conversation could not be read"), QString::fromStdString(e.what()));
    return false;
  }
  if (!record) {
    reloadConversationList();
    return false;
  }
  ab_enabled_ = record->sides.size() > 1;
  ab_->setChecked(ab_enabled_);
  side_b_controls_->setVisible(ab_enabled_);
  settings_->setSystemPrompt(record->systemPrompt);
  settings_->setSamplingJson(record->sampling);
  for (int side = 0; side < kSides; ++side) {
    Side& s = sides_[size_t(side)];
    s.conversation.reset();
    s.messages.clear();
    s.last_stats.reset();
    if (size_t(side) < record->sides.size()) {
      const ChatSideRecord& r = record->sides[size_t(side)];
      s.conversation = r.conversationId;
      s.messages = r.messages;
      if (!r.modelPath.isEmpty()) {
        if (pickerIndexOf(side, r.modelPath) < 0) {
          extra_models_.push_back(ChatModel{r.modelPath, r.modelName, tr("not in the model library"), {}, {}});
          fillPickers();
        }
        s.picker->setCurrentIndex(pickerIndexOf(side, r.modelPath));
        loadSelected(side);
      }
    }
    rebuildTranscript(side);
    s.context->setFormat(tr("context: measured at the next reply"));
  }
  for (int row = 0; row < conversations_->count(); ++row) {
    if (conversations_->item(row)->data(Qt::UserRole).toLongLong() == id) conversations_->setCurrentRow(row);
  }
  setNotice({});
  updateButtons();
  return true;
}

bool ChatView::exportMarkdown(const QString& file) {
  if (!sides_[0].conversation) {
    ctx_.reportError(tr("Chat: nothing to export"), tr("The conversation has no messages yet."));
    return false;
  }
  try {
    const auto record = load_chat_conversation(ctx_.database(), *sides_[0].conversation);
    if (!record) {
      ctx_.reportError(tr("Chat: nothing to export"), tr("The conversation is no longer in the database."));
      return false;
    }
    QSaveFile out(file);
    const QByteArray bytes = chat_markdown(*record).toUtf8();
    if (!out.open(QIODevice::WriteOnly) || out.write(bytes) != bytes.size() || !out.commit()) {
      ctx_.reportError(tr("Chat: export failed"), tr("%1: %2").arg(file, out.errorString()));
      return false;
    }
  } catch (const Error& e) {
    ctx_.reportError(tr("Chat: export failed"), QString::fromStdString(e.what()));
    return false;
  }
  ctx_.info(tr("Chat: exported the conversation to %1").arg(file));
  return true;
}

void ChatView::reloadConversationList() {
  std::vector<ChatListEntry> entries;
  try {
    entries = list_chat_conversations(ctx_.database());
  } catch (const Error& e) {
    ctx_.log(LogLevel::Error, QString::fromStdString(e.what()));
    return;
  }
  const QSignalBlocker block(conversations_);
  conversations_->clear();
  for (const ChatListEntry& e : entries) {
    auto* item = new QListWidgetItem(tr("%1\n%2 · %3 messages").arg(e.title, e.modelNames).arg(e.messageCount));
    item->setData(Qt::UserRole, qlonglong(e.id));
    item->setToolTip(e.modelNames);
    conversations_->addItem(item);
    if (sides_[0].conversation == e.id) conversations_->setCurrentItem(item);
  }
  Q_EMIT conversationListChanged();
}

// ------------------------------------------------------------------ display

void ChatView::rebuildTranscript(int side) {
  ChatTranscript* t = sides_[size_t(side)].transcript;
  t->clear();
  for (const store::Message& m : sides_[size_t(side)].messages) {
    if (m.role == store::MessageRole::User) t->addUser(QString::fromStdString(m.content));
    if (m.role == store::MessageRole::Assistant) t->addAssistant(QString::fromStdString(m.content), reply_figures(m));
  }
}

void ChatView::updateContext(int side, int used, int length) {
  QProgressBar* bar = sides_[size_t(side)].context;
  bar->setRange(0, std::max(length, 1));
  bar->setValue(std::min(used, std::max(length, 1)));
  bar->setFormat(tr("context: %1 of %2 tokens").arg(used).arg(length));
}

void ChatView::updateButtons() {
  const bool idle = !busy();
  QString why;
  const bool ready = readyToSend(&why);
  bool can_regenerate = ready;
  for (int side : activeSides()) {
    const Side& s = sides_[size_t(side)];
    can_regenerate &= !s.messages.empty() && s.messages.back().role == store::MessageRole::Assistant;
  }
  send_->setEnabled(ready);
  stop_->setEnabled(!idle);
  regenerate_->setEnabled(can_regenerate);
  ab_->setEnabled(idle);
  for (Side& s : sides_) s.picker->setEnabled(idle);
  conversations_->setEnabled(idle);
  delete_->setEnabled(idle);
  export_->setEnabled(idle && sides_[0].conversation.has_value());
}

void ChatView::setNotice(const QString& text) {
  notice_->setText(text);
  notice_->setVisible(!text.isEmpty());
}

}  // namespace aqlm::studio
