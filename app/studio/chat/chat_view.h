#pragma once
// The studio's Chat tab: talk to an original or compressed model, or to two side by side
// answering the same prompts (A/B). Replies stream token by token from a worker thread per
// model (ChatModelRunner); figures under each reply (tokens, tokens/s, time to first token);
// how much of the context window the conversation uses; Stop, Regenerate, a system prompt and
// sampling settings; conversations kept in the run database and exported to Markdown.
//
// A turn is all or nothing: A replies, then B (one after the other, so each model's tokens/s
// is measured without the other competing for the cores), and the turn is written to the
// database when every side has replied. Stop ends the turn keeping what was streamed; an error
// (e.g. a prompt longer than the context) undoes the turn on every side and says why.
#include <QString>
#include <QWidget>

#include <array>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/studio/chat/chat_model_runner.h"
#include "app/studio/studio_context.h"
#include "core/store/records.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QListWidget;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;

namespace aqlm::studio {

class ChatSettingsPanel;
class ChatTranscript;

class ChatView : public QWidget {
  Q_OBJECT
 public:
  static constexpr int kSides = 2;  // side 0 is A (always shown), side 1 is B (A/B mode)

  explicit ChatView(StudioContext& ctx, QWidget* parent = nullptr);
  ~ChatView() override;

  // Selects and loads the model of side A (e.g. Runs' "Chat with this model"). A path that is
  // not among the context's chat models is added to the picker under its file name.
  void selectModel(const QString& path);
  // Turns A/B on and selects side B's model.
  void selectModelB(const QString& path);
  void setABEnabled(bool enabled);
  bool abEnabled() const { return ab_enabled_; }

  // What the buttons do. send/regenerate return false, saying why in the status line, when
  // they cannot start (busy, model not ready, empty message, nothing to regenerate).
  bool send(const QString& text);
  void stop();
  bool regenerate();
  void newConversation();
  bool openConversation(store::Id id);  // false when it no longer exists
  // Writes the open conversation as Markdown; false (with the reason reported) on failure.
  bool exportMarkdown(const QString& file);

  bool busy() const { return turn_.has_value(); }
  std::optional<store::Id> conversationId() const { return sides_[0].conversation; }
  ChatTranscript* transcript(int side) const { return sides_[size_t(side)].transcript; }
  ChatModelRunner* runner(int side) const { return sides_[size_t(side)].runner; }
  ChatSettingsPanel* settingsPanel() const { return settings_; }
  QPlainTextEdit* input() const { return input_; }
  QString statusText(int side) const;
  QString contextText(int side) const;
  std::optional<GenerationStats> lastStats(int side) const { return sides_[size_t(side)].last_stats; }

 Q_SIGNALS:
  void modelLoaded(int side);
  void modelFailed(int side, const QString& error);
  void replyPiece(int side, const QString& piece);
  void replyFinished(int side);
  void turnFinished(bool ok);  // every side replied (ok) or the turn was undone after an error
  void conversationListChanged();

 private:
  struct Side {
    QComboBox* picker = nullptr;
    QLabel* status = nullptr;
    ChatTranscript* transcript = nullptr;
    QProgressBar* context = nullptr;
    ChatModelRunner* runner = nullptr;
    std::optional<store::Id> conversation;
    std::vector<store::Message> messages;  // committed: what the database holds
    std::optional<GenerationStats> last_stats;
  };
  struct Turn {
    bool regenerate = false;
    QString user_text;
    std::string system_prompt;
    GenerationConfig config;
    nlohmann::json sampling;  // the panel's settings when the turn began, kept with a new conversation
    std::vector<int> sides;  // in the order they reply
    size_t running = 0;      // index into sides
    bool stopped = false;
    std::vector<ChatReplyResult> results;  // per entry of `sides` that finished
  };

  static QString sideName(int side);  // "A", "B"
  QWidget* buildTopBar();
  QWidget* buildConversationList();
  QWidget* buildInputRow();
  void connectRunner(int side);

  // Models
  void fillPickers();
  int pickerIndexOf(int side, const QString& path) const;
  void pickModel(int side, const QString& path);  // selects in the picker (adding it if absent) and loads
  void onPickerChanged(int side);
  void loadSelected(int side);
  std::optional<ChatModel> selectedModel(int side) const;
  EngineOptions engineOptions() const;
  void showStatus(int side);

  // Turns
  std::vector<int> activeSides() const;
  bool readyToSend(QString* why) const;
  void startTurn(Turn turn);
  void runNextSide();
  void onPiece(int side, const QString& piece);
  void onFinished(int side, const ChatReplyResult& result);
  void onFailed(int side, const QString& error);
  void commitTurn();
  void undoTurn(const QString& error);
  void endTurn(bool ok);
  int currentSide() const;  // the side writing now, -1 when none
  std::vector<ChatMessage> historyFor(int side, bool regenerate) const;

  // Display
  void rebuildTranscript(int side);
  void updateContext(int side, int used, int length);
  void updateButtons();
  void setNotice(const QString& text);
  void reloadConversationList();

  StudioContext& ctx_;
  std::array<Side, kSides> sides_;
  std::vector<ChatModel> extra_models_;  // selected by path, not in the context's list
  QCheckBox* ab_ = nullptr;
  QWidget* side_b_controls_ = nullptr;
  QListWidget* conversations_ = nullptr;
  QPushButton* delete_ = nullptr;
  QPushButton* export_ = nullptr;
  ChatSettingsPanel* settings_ = nullptr;
  QPlainTextEdit* input_ = nullptr;
  QPushButton* send_ = nullptr;
  QPushButton* stop_ = nullptr;
  QPushButton* regenerate_ = nullptr;
  QLabel* notice_ = nullptr;
  std::optional<Turn> turn_;
  std::array<std::optional<QString>, kSides> pending_models_;  // selected during a turn: applied when it ends
  bool ab_enabled_ = false;
};

}  // namespace aqlm::studio
