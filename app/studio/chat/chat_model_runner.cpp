#include "app/studio/chat/chat_model_runner.h"

#include <QFileInfo>

#include <chrono>
#include <exception>

#include "core/common/error.h"
#include "core/model/model.h"
#include "core/runtime/chat_session.h"

namespace aqlm::studio {

namespace {

QString describe(const Model& model, const Engine& engine) {
  const QString arch = QString::fromLatin1(architecture_name(model.config.arch));
  const double millions = double(model.config.num_parameters()) / 1e6;
  QString text = QStringLiteral("%1 · %2 M parameters · %3")
                     .arg(arch)
                     .arg(millions, 0, 'f', millions < 10 ? 2 : 0)
                     .arg(QString::fromLatin1(model_format_name(model.format)));
  if (model.config.aqlm) {
    const AqlmQuantConfig& q = *model.config.aqlm;
    text += QStringLiteral(" · AQLM %1x%2g%3").arg(q.num_codebooks).arg(q.nbits_per_codebook).arg(q.in_group_size);
  }
  return text + QStringLiteral(" · ") + QString::fromLatin1(device_name(engine.device()));
}

QString what_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    return QString::fromStdString(e.what());
  } catch (const std::bad_alloc&) {
    return QStringLiteral("out of memory");
  } catch (const std::exception& e) {
    return QStringLiteral("internal error: ") + QString::fromStdString(e.what());
  }
}

}  // namespace

// ------------------------------------------------------------------ ChatWorker (worker thread)

ChatWorker::ChatWorker() = default;
ChatWorker::~ChatWorker() { unload(); }

void ChatWorker::unload() {
  // The session and the engine refer to the model: drop them first, and free the old model's
  // memory before a new one is read.
  session_.reset();
  engine_.reset();
  model_.reset();
}

void ChatWorker::load(quint64 token, const QString& path, const EngineOptions& options) {
  unload();
  const auto start = std::chrono::steady_clock::now();
  try {
    model_ = load_model(path.toStdString());
    QString gpu_note;
    try {
      engine_ = create_engine(*model_, options);
    } catch (const Error& e) {
      // The GPU (the default where one works) refused this model, e.g. too little free memory:
      // chat on the CPU and say why, as `aqlm-cli chat --device auto` does.
      if (options.device != Device::Cuda) throw;
      EngineOptions cpu = options;
      cpu.device = Device::Cpu;
      engine_ = create_engine(*model_, cpu);
      gpu_note = QStringLiteral(" (not on the GPU: %1)").arg(QString::fromStdString(e.what()));
    }
    session_ = std::make_unique<ChatSession>(*model_, *engine_);
    ChatModelInfo info;
    info.path = path;
    info.description = describe(*model_, *engine_) + gpu_note;
    info.contextLength = engine_->context_length();
    info.loadSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    Q_EMIT loaded(token, info);
  } catch (...) {
    const QString error = what_of(std::current_exception());
    unload();
    Q_EMIT loadFailed(token, error);
  }
}

void ChatWorker::reply(const ChatReplyRequest& request) {
  if (!session_) {
    Q_EMIT failed(request.id, QStringLiteral("no model is loaded"));
    return;
  }
  try {
    session_->set_system_prompt(request.systemPrompt);
    session_->set_messages(request.messages);
    const ChatReply reply = session_->reply(
        request.config,
        [&](std::string_view text) { Q_EMIT piece(request.id, QString::fromUtf8(text.data(), qsizetype(text.size()))); },
        request.cancel.get());
    ChatReplyResult result;
    result.text = QString::fromStdString(reply.text);
    result.stats = reply.stats;
    result.contextUsed = session_->context_used();
    result.contextLength = session_->context_length();
    result.templateWarning = QString::fromStdString(session_->template_warning());
    Q_EMIT finished(request.id, result);
  } catch (...) {
    Q_EMIT failed(request.id, what_of(std::current_exception()));
  }
}

// ------------------------------------------------------------------ ChatModelRunner (UI thread)

ChatModelRunner::ChatModelRunner(QObject* parent) : QObject(parent), worker_(new ChatWorker) {
  qRegisterMetaType<ChatModelInfo>();
  qRegisterMetaType<ChatReplyResult>();
  thread_.setObjectName(QStringLiteral("chat-model"));
  worker_->moveToThread(&thread_);
  connect(&thread_, &QThread::finished, worker_, &QObject::deleteLater);

  // Results of superseded loads and requests are dropped by their token / id.
  connect(worker_, &ChatWorker::loaded, this, [this](quint64 token, const ChatModelInfo& info) {
    if (token != load_token_) return;
    info_ = info;
    setState(State::Ready);
    Q_EMIT loaded(info);
  });
  connect(worker_, &ChatWorker::loadFailed, this, [this](quint64 token, const QString& error) {
    if (token != load_token_) return;
    error_ = error;
    setState(State::Failed);
    Q_EMIT loadFailed(path_, error);
  });
  connect(worker_, &ChatWorker::piece, this, [this](quint64 id, const QString& text) {
    if (id == request_id_ && state_ == State::Generating) Q_EMIT piece(text);
  });
  connect(worker_, &ChatWorker::finished, this, [this](quint64 id, const ChatReplyResult& result) {
    if (id != request_id_ || state_ != State::Generating) return;
    setState(State::Ready);
    Q_EMIT finished(result);
  });
  connect(worker_, &ChatWorker::failed, this, [this](quint64 id, const QString& error) {
    if (id != request_id_ || state_ != State::Generating) return;
    setState(State::Ready);
    Q_EMIT failed(error);
  });
  thread_.start();
}

ChatModelRunner::~ChatModelRunner() {
  stop();
  thread_.quit();
  thread_.wait();
}

void ChatModelRunner::setState(State state) {
  if (state == state_) return;
  state_ = state;
  Q_EMIT stateChanged(state);
}

void ChatModelRunner::load(const QString& path, const EngineOptions& options) {
  stop();
  ++request_id_;  // a reply still running belongs to the old model: its signals are dropped
  path_ = path;
  info_ = ChatModelInfo{};
  error_.clear();
  const quint64 token = ++load_token_;
  setState(State::Loading);
  QMetaObject::invokeMethod(worker_, [worker = worker_, token, path, options] { worker->load(token, path, options); },
                            Qt::QueuedConnection);
}

bool ChatModelRunner::reply(std::string systemPrompt, std::vector<ChatMessage> messages,
                            const GenerationConfig& config) {
  if (state_ != State::Ready) return false;
  ChatReplyRequest request;
  request.id = ++request_id_;
  request.systemPrompt = std::move(systemPrompt);
  request.messages = std::move(messages);
  request.config = config;
  request.cancel = cancel_ = std::make_shared<std::atomic<bool>>(false);
  setState(State::Generating);
  QMetaObject::invokeMethod(worker_, [worker = worker_, request = std::move(request)] { worker->reply(request); },
                            Qt::QueuedConnection);
  return true;
}

void ChatModelRunner::stop() {
  if (cancel_) cancel_->store(true);
}

}  // namespace aqlm::studio
