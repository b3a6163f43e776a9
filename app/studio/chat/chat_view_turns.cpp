// ChatView: turns (send, regenerate, the sides replying one after the other, Stop, and the
// turn written to the database at its end or undone after an error).
#include <QFileInfo>
#include <QPlainTextEdit>

#include "app/studio/chat/chat_conversation.h"
#include "app/studio/chat/chat_markdown.h"
#include "app/studio/chat/chat_settings_panel.h"
#include "app/studio/chat/chat_transcript.h"
#include "app/studio/chat/chat_view.h"
#include "core/common/error.h"

namespace aqlm::studio {

namespace {

store::Message committed(store::Id id, store::Id conversation, const store::MessageInfo& info) {
  store::Message m;
  static_cast<store::MessageInfo&>(m) = info;
  m.id = id;
  m.conversation_id = conversation;
  m.created = store::now();
  return m;
}

store::MessageInfo reply_info(const ChatReplyResult& r) {
  store::MessageInfo info;
  info.role = store::MessageRole::Assistant;
  info.content = r.text.toStdString();
  info.tokens = r.stats.generated_tokens;
  // A decode speed needs a token after the first; a time to first token needs a first token.
  if (r.stats.generated_tokens > 1 && r.stats.decode_tokens_per_s > 0) info.tokens_per_second = r.stats.decode_tokens_per_s;
  if (r.stats.generated_tokens > 0) info.time_to_first_token_s = r.stats.time_to_first_token_s;
  return info;
}

}  // namespace

// ------------------------------------------------------------------ turns

bool ChatView::readyToSend(QString* why) const {
  if (busy()) {
    *why = tr("A reply is still being written; Stop it first.");
    return false;
  }
  for (int side : activeSides()) {
    const ChatModelRunner& r = *sides_[size_t(side)].runner;
    const QString name = abEnabled() ? tr("Model %1").arg(sideName(side)) : tr("The model");
    switch (r.state()) {
      case ChatModelRunner::State::Ready: break;
      case ChatModelRunner::State::Empty: *why = tr("Choose a model first (%1).").arg(name); return false;
      case ChatModelRunner::State::Loading: *why = tr("%1 is still loading.").arg(name); return false;
      case ChatModelRunner::State::Failed: *why = tr("%1 could not be loaded: %2").arg(name, r.error()); return false;
      case ChatModelRunner::State::Generating: *why = tr("%1 is still writing.").arg(name); return false;
    }
  }
  return true;
}

bool ChatView::send(const QString& text) {
  QString why;
  if (!readyToSend(&why)) {
    setNotice(why);
    return false;
  }
  if (text.trimmed().isEmpty()) {
    setNotice(tr("Write a message first."));
    return false;
  }
  Turn turn;
  turn.user_text = text;
  turn.sides = activeSides();
  for (int side : turn.sides) sides_[size_t(side)].transcript->addUser(text);
  input_->clear();
  startTurn(std::move(turn));
  return true;
}

bool ChatView::regenerate() {
  QString why;
  if (!readyToSend(&why)) {
    setNotice(why);
    return false;
  }
  for (int side : activeSides()) {
    const Side& s = sides_[size_t(side)];
    if (!s.conversation || s.messages.empty() || s.messages.back().role != store::MessageRole::Assistant) {
      setNotice(tr("There is no reply to regenerate yet."));
      return false;
    }
  }
  Turn turn;
  turn.regenerate = true;
  turn.sides = activeSides();
  for (int side : turn.sides) sides_[size_t(side)].transcript->removeLastReply();
  startTurn(std::move(turn));
  return true;
}

void ChatView::startTurn(Turn turn) {
  // Every side of a turn samples with the same settings and seed, so A/B differ by model only.
  turn.system_prompt = settings_->systemPrompt().toStdString();
  turn.config = settings_->generationConfig();
  turn.sampling = settings_->samplingJson();
  setNotice({});
  turn_ = std::move(turn);
  updateButtons();
  runNextSide();
}

std::vector<ChatMessage> ChatView::historyFor(int side, bool regenerate) const {
  std::vector<ChatMessage> history;
  for (const store::Message& m : sides_[size_t(side)].messages) {
    if (m.role == store::MessageRole::System) continue;
    history.push_back({store::name(m.role), m.content});
  }
  if (regenerate) {
    if (!history.empty() && history.back().role == "assistant") history.pop_back();
  } else {
    history.push_back({"user", turn_->user_text.toStdString()});
  }
  return history;
}

void ChatView::runNextSide() {
  while (turn_ && turn_->running < turn_->sides.size()) {
    const int side = turn_->sides[turn_->running];
    Side& s = sides_[size_t(side)];
    s.transcript->beginReply();
    if (turn_->stopped) {  // Stop before this side began: an empty reply keeps the turns aligned
      ChatReplyResult skipped;
      skipped.stats.stop_reason = StopReason::Cancelled;
      s.transcript->finishReply(QString(), tr("stopped before it began"));
      turn_->results.push_back(skipped);
      ++turn_->running;
      continue;
    }
    if (!s.runner->reply(turn_->system_prompt, historyFor(side, turn_->regenerate), turn_->config))
      undoTurn(tr("Model %1 is not ready.").arg(sideName(side)));
    return;
  }
  if (turn_) commitTurn();
}

void ChatView::onPiece(int side, const QString& piece) {
  if (currentSide() != side) return;
  sides_[size_t(side)].transcript->appendToReply(piece);
  Q_EMIT replyPiece(side, piece);
}

void ChatView::onFinished(int side, const ChatReplyResult& result) {
  if (currentSide() != side) return;
  Side& s = sides_[size_t(side)];
  s.transcript->finishReply(result.text, reply_figures(reply_info(result), result.stats.stop_reason));
  s.last_stats = result.stats;
  updateContext(side, result.contextUsed, result.contextLength);
  if (!result.templateWarning.isEmpty()) ctx_.warn(tr("Chat (model %1): %2").arg(sideName(side), result.templateWarning));
  turn_->results.push_back(result);
  ++turn_->running;
  Q_EMIT replyFinished(side);
  runNextSide();
}

void ChatView::onFailed(int side, const QString& error) {
  if (currentSide() != side) return;
  undoTurn(abEnabled() ? tr("Model %1: %2").arg(sideName(side), error) : error);
}

int ChatView::currentSide() const {
  return turn_ && turn_->running < turn_->sides.size() ? turn_->sides[turn_->running] : -1;
}

void ChatView::stop() {
  if (!turn_) return;
  turn_->stopped = true;
  if (currentSide() >= 0) sides_[size_t(currentSide())].runner->stop();
}

void ChatView::endTurn(bool ok) {
  updateButtons();
  Q_EMIT turnFinished(ok);
  const auto pending = pending_models_;
  pending_models_ = {};
  if (pending[0]) selectModel(*pending[0]);
  if (pending[1]) selectModelB(*pending[1]);
}

void ChatView::commitTurn() {
  const Turn turn = std::move(*turn_);
  turn_.reset();
  store::RunDatabase& db = ctx_.database();
  try {
    if (!turn.regenerate && !sides_[size_t(turn.sides.front())].conversation) {
      std::vector<ChatModel> models;
      for (int side : turn.sides) {
        std::optional<ChatModel> model = selectedModel(side);
        if (!model) model = ChatModel{sides_[size_t(side)].runner->path(), QFileInfo(sides_[size_t(side)].runner->path()).fileName(), {}, {}, {}};
        models.push_back(*model);
      }
      const std::vector<store::Id> ids = create_chat_conversation(db, turn.user_text, models,
                                                                  QString::fromStdString(turn.system_prompt),
                                                                  turn.sampling);
      for (size_t i = 0; i < turn.sides.size(); ++i) sides_[size_t(turn.sides[i])].conversation = ids[i];
    }
    for (size_t i = 0; i < turn.sides.size(); ++i) {
      Side& s = sides_[size_t(turn.sides[i])];
      const store::Id conversation = *s.conversation;
      if (turn.regenerate) {
        db.remove_message(s.messages.back().id);
        s.messages.pop_back();
      } else {
        store::MessageInfo user;
        user.role = store::MessageRole::User;
        user.content = turn.user_text.toStdString();
        s.messages.push_back(committed(db.add_message(conversation, user), conversation, user));
      }
      const store::MessageInfo reply = reply_info(turn.results[i]);
      s.messages.push_back(committed(db.add_message(conversation, reply), conversation, reply));
    }
  } catch (const Error& e) {
    ctx_.reportError(tr("Chat: the conversation could not be saved"), QString::fromStdString(e.what()));
    // Show what the database really holds.
    if (sides_[0].conversation) openConversation(*sides_[0].conversation);
  }
  reloadConversationList();
  endTurn(true);
}

void ChatView::undoTurn(const QString& error) {
  const Turn turn = std::move(*turn_);
  turn_.reset();
  for (int side : turn.sides) rebuildTranscript(side);
  if (!turn.regenerate && input_->toPlainText().isEmpty()) input_->setPlainText(turn.user_text);
  setNotice(error);
  ctx_.reportError(tr("Chat: no reply"), error);
  endTurn(false);
}

}  // namespace aqlm::studio
