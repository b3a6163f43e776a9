#pragma once
// One model of the Chat tab, run off the UI thread. A worker QThread owns the Model, its Engine
// and a core ChatSession; the UI asks for a load or a reply through queued calls and hears back
// through queued signals, one `piece` per streamed token. Stop sets the running reply's cancel
// flag, which the generator checks before every forward step.
//
// The UI is the owner of the conversation: each reply request carries the whole history, and
// the session's prefix reuse makes that cheap (only the tokens the KV cache lacks are run).
#include <QObject>
#include <QString>
#include <QThread>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/runtime/engine.h"
#include "core/runtime/generator.h"
#include "core/text/chat_template.h"

namespace aqlm {
struct Model;
class ChatSession;
}  // namespace aqlm

namespace aqlm::studio {

// What the view shows about a loaded model.
struct ChatModelInfo {
  QString path;
  QString description;  // "llama · 0.3 M parameters · llama2c · cpu"
  int contextLength = 0;
  double loadSeconds = 0;
};

struct ChatReplyRequest {
  quint64 id = 0;
  std::string systemPrompt;
  std::vector<ChatMessage> messages;  // user/assistant turns; the last is the user's
  GenerationConfig config;
  std::shared_ptr<std::atomic<bool>> cancel;
};

struct ChatReplyResult {
  QString text;
  GenerationStats stats;
  int contextUsed = 0;  // tokens in the KV cache after the reply
  int contextLength = 0;
  QString templateWarning;  // the model's template could not be used (ChatML was)
};

// Lives on the runner's thread; only the runner calls it (through queued invocations).
class ChatWorker : public QObject {
  Q_OBJECT
 public:
  ChatWorker();
  ~ChatWorker() override;
  void load(quint64 token, const QString& path, const EngineOptions& options);
  void reply(const ChatReplyRequest& request);

 Q_SIGNALS:
  void loaded(quint64 token, const aqlm::studio::ChatModelInfo& info);
  void loadFailed(quint64 token, const QString& error);
  void piece(quint64 request, const QString& text);
  void finished(quint64 request, const aqlm::studio::ChatReplyResult& result);
  void failed(quint64 request, const QString& error);

 private:
  void unload();
  std::unique_ptr<Model> model_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ChatSession> session_;
};

class ChatModelRunner : public QObject {
  Q_OBJECT
 public:
  enum class State { Empty, Loading, Ready, Failed, Generating };
  Q_ENUM(State)

  explicit ChatModelRunner(QObject* parent = nullptr);
  ~ChatModelRunner() override;  // stops a reply and waits for the thread (a load in progress finishes first)

  // Loads `path` (a reply in progress is stopped first). Emits loaded or loadFailed.
  void load(const QString& path, const EngineOptions& options);
  // Starts a reply; false (and nothing starts) unless Ready. Emits pieces, then finished or failed.
  bool reply(std::string systemPrompt, std::vector<ChatMessage> messages, const GenerationConfig& config);
  // Cancels the reply in progress (it finishes with the text streamed so far); no-op otherwise.
  void stop();

  State state() const { return state_; }
  QString path() const { return path_; }  // the model loaded, loading or that failed
  const ChatModelInfo& info() const { return info_; }
  QString error() const { return error_; }  // why the last load failed

 Q_SIGNALS:
  void stateChanged(aqlm::studio::ChatModelRunner::State state);
  void loaded(const aqlm::studio::ChatModelInfo& info);
  void loadFailed(const QString& path, const QString& error);
  void piece(const QString& text);
  void finished(const aqlm::studio::ChatReplyResult& result);
  void failed(const QString& error);

 private:
  void setState(State state);

  QThread thread_;
  ChatWorker* worker_;  // owned by thread_ (deleted when it finishes)
  State state_ = State::Empty;
  QString path_;
  ChatModelInfo info_;
  QString error_;
  quint64 load_token_ = 0;
  quint64 request_id_ = 0;
  std::shared_ptr<std::atomic<bool>> cancel_;
};

}  // namespace aqlm::studio

Q_DECLARE_METATYPE(aqlm::studio::ChatModelInfo)
Q_DECLARE_METATYPE(aqlm::studio::ChatReplyResult)
