#include "app/studio/chat/chat_transcript.h"

#include <QLabel>
#include <QScrollBar>
#include <QVBoxLayout>

namespace aqlm::studio {

namespace {
// ~30 repaints a second: smooth to the eye, and cheap when a small model streams thousands of tokens a second.
constexpr int kRepaintIntervalMs = 33;
}  // namespace

ChatTranscript::ChatTranscript(QWidget* parent) : QScrollArea(parent) {
  setWidgetResizable(true);
  setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);  // bubbles wrap to the column's width
  setFrameShape(QFrame::StyledPanel);
  auto* content = new QWidget;
  content->setObjectName(QStringLiteral("chatTranscriptContent"));
  column_ = new QVBoxLayout(content);
  column_->setContentsMargins(10, 8, 10, 8);
  column_->setSpacing(8);
  heading_ = new QLabel;
  heading_->setObjectName(QStringLiteral("chatTranscriptHeading"));
  heading_->setStyleSheet(QStringLiteral("font-weight: 600; color: palette(mid);"));
  heading_->setWordWrap(true);
  heading_->hide();
  column_->addWidget(heading_);
  placeholder_ = new QLabel;
  placeholder_->setAlignment(Qt::AlignCenter);
  placeholder_->setWordWrap(true);
  placeholder_->setStyleSheet(QStringLiteral("color: palette(mid);"));
  column_->addWidget(placeholder_);
  column_->addStretch(1);
  setWidget(content);

  repaint_.setSingleShot(true);
  repaint_.setInterval(kRepaintIntervalMs);
  connect(&repaint_, &QTimer::timeout, this, &ChatTranscript::flushStream);
  // Follow the reply as it grows, unless the reader scrolled up.
  connect(verticalScrollBar(), &QScrollBar::rangeChanged, this, [this](int, int max) {
    if (follow_) verticalScrollBar()->setValue(max);
  });
  connect(verticalScrollBar(), &QScrollBar::valueChanged, this,
          [this](int value) { follow_ = value >= verticalScrollBar()->maximum() - 4; });
}

void ChatTranscript::clear() {
  repaint_.stop();
  streamed_.clear();
  for (Bubble& b : bubbles_) delete b.frame;
  bubbles_.clear();
  placeholder_->setVisible(!placeholder_->text().isEmpty());
}

void ChatTranscript::setHeading(const QString& heading) {
  heading_->setText(heading);
  heading_->setVisible(!heading.isEmpty());
}

void ChatTranscript::setPlaceholder(const QString& text) {
  placeholder_->setText(text);
  placeholder_->setVisible(bubbles_.empty() && !text.isEmpty());
}

ChatTranscript::Bubble& ChatTranscript::add(bool user, const QString& text, const QString& figures) {
  placeholder_->hide();
  Bubble b;
  b.user = user;
  auto* frame = new QFrame;
  frame->setObjectName(user ? QStringLiteral("userMessage") : QStringLiteral("assistantMessage"));
  frame->setFrameShape(QFrame::StyledPanel);
  b.frame = frame;
  b.frame->setStyleSheet(user ? QStringLiteral("#userMessage { background: palette(alternate-base); border-radius: 6px; }")
                              : QStringLiteral("#assistantMessage { background: palette(base); border-radius: 6px; }"));
  auto* layout = new QVBoxLayout(b.frame);
  layout->setContentsMargins(10, 6, 10, 6);
  layout->setSpacing(3);
  auto* role = new QLabel(user ? tr("You") : tr("Assistant"));
  role->setStyleSheet(QStringLiteral("font-weight: 600;"));
  layout->addWidget(role);
  b.text = new QLabel(text);
  b.text->setObjectName(QStringLiteral("messageText"));
  b.text->setTextFormat(Qt::PlainText);  // model output is shown as written, never as markup
  b.text->setWordWrap(true);
  b.text->setTextInteractionFlags(Qt::TextSelectableByMouse | Qt::TextSelectableByKeyboard);
  layout->addWidget(b.text);
  if (!user) {
    b.figures = new QLabel(figures);
    b.figures->setObjectName(QStringLiteral("messageFigures"));
    b.figures->setStyleSheet(QStringLiteral("color: palette(mid); font-size: small;"));
    b.figures->setWordWrap(true);
    layout->addWidget(b.figures);
  }
  // Before the stretch at the end of the column.
  column_->insertWidget(column_->count() - 1, b.frame);
  bubbles_.push_back(b);
  follow_ = true;
  return bubbles_.back();
}

void ChatTranscript::addUser(const QString& text) { add(true, text, {}); }

void ChatTranscript::addAssistant(const QString& text, const QString& figures) { add(false, text, figures); }

void ChatTranscript::beginReply() {
  streamed_.clear();
  Bubble& b = add(false, QString(), tr("generating…"));
  b.text->setText(QStringLiteral("…"));
}

void ChatTranscript::appendToReply(const QString& piece) {
  streamed_ += piece;
  if (!repaint_.isActive()) repaint_.start();
}

void ChatTranscript::flushStream() {
  if (bubbles_.empty() || bubbles_.back().user) return;
  bubbles_.back().text->setText(streamed_);
}

void ChatTranscript::finishReply(const QString& text, const QString& figures) {
  repaint_.stop();
  streamed_.clear();
  if (bubbles_.empty() || bubbles_.back().user) return;
  bubbles_.back().text->setText(text);
  bubbles_.back().figures->setText(figures);
}

void ChatTranscript::removeLastReply() {
  if (bubbles_.empty() || bubbles_.back().user) return;
  repaint_.stop();
  streamed_.clear();
  delete bubbles_.back().frame;
  bubbles_.pop_back();
}

QString ChatTranscript::messageText(int index) const {
  if (index < 0 || index >= messageCount()) return {};
  return bubbles_[size_t(index)].text->text();
}

QString ChatTranscript::messageFigures(int index) const {
  if (index < 0 || index >= messageCount() || !bubbles_[size_t(index)].figures) return {};
  return bubbles_[size_t(index)].figures->text();
}

}  // namespace aqlm::studio
