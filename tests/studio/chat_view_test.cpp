// The Chat tab (ChatView) driven as a user would, offscreen, on the shared stories260K model
// (and tests/fixtures/model/tiny_llama.gguf as a second model for A/B). Replies are checked
// against a core ChatSession run in the test with the same settings: the view must stream,
// store and show exactly what the chat logic produces.
#include <QCheckBox>
#include <QDateTime>
#include <QDir>
#include <QDoubleSpinBox>
#include <QElapsedTimer>
#include <QFile>
#include <QLabel>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTest>
#include <QTimer>

#include <fstream>

#include "app/studio/chat/chat_model_runner.h"
#include "app/studio/chat/chat_settings_panel.h"
#include "app/studio/chat/chat_transcript.h"
#include "app/studio/chat/chat_view.h"
#include "core/model/model.h"
#include "core/runtime/chat_session.h"
#include "core/runtime/engine.h"
#include "tests/studio/studio_test_support.h"

using namespace aqlm;
using namespace aqlm::studio;

namespace {

constexpr int kLoadTimeoutMs = 60000;
constexpr int kReplyTimeoutMs = 120000;

// A context with a fresh data folder (its own database and settings), errors recorded.
struct Fixture {
  std::unique_ptr<StudioContext> context;
  QStringList errors;
  std::filesystem::path data;
};

std::unique_ptr<Fixture> make_fixture(const QString& name, bool fresh = true) {
  auto f = std::make_unique<Fixture>();
  if (fresh) {
    f->data = test::fresh_data_dir(name);
  } else {
    f->data = store::RunDatabase::default_path().parent_path();
  }
  f->context = std::make_unique<StudioContext>(store::RunDatabase::open(store::RunDatabase::default_path()));
  f->context->setErrorReporter(
      [raw = f.get()](const QString& title, const QString& message) { raw->errors << title + QStringLiteral(": ") + message; });
  return f;
}

store::Id add_library_model(StudioContext& ctx, const std::filesystem::path& path, const std::string& name) {
  const store::Id id = ctx.database().add_model(
      store::ModelInfo{name, path, "llama2c", "llama", 260032, "float32", std::int64_t(std::filesystem::file_size(path))});
  ctx.refreshChatModels();
  return id;
}

// What a core ChatSession replies to `turns` with these settings: the reference for the view.
struct Reference {
  std::vector<std::string> replies;
  std::vector<int> generated;
  int context_used = 0;
};

Reference reference_chat(const std::filesystem::path& model_path, const std::string& system,
                         const std::vector<std::string>& turns, const GenerationConfig& config, int regenerations = 0) {
  const auto model = load_model(model_path.string());
  auto engine = create_engine(*model);
  ChatSession session(*model, *engine);
  session.set_system_prompt(system);
  Reference ref;
  for (const std::string& turn : turns) {
    const ChatReply reply = session.send(turn, config);
    ref.replies.push_back(reply.text);
    ref.generated.push_back(reply.stats.generated_tokens);
  }
  for (int i = 0; i < regenerations; ++i) {
    const ChatReply reply = session.regenerate(config);
    ref.replies.back() = reply.text;
    ref.generated.back() = reply.stats.generated_tokens;
  }
  ref.context_used = session.context_used();
  return ref;
}

// Greedy (or fixed-seed) settings in the panel, returned as the config the view will use.
GenerationConfig set_sampling(ChatView& view, double temperature, int max_tokens, int seed = 0) {
  ChatSettingsPanel* panel = view.settingsPanel();
  panel->temperature()->setValue(temperature);
  panel->maxNewTokens()->setValue(max_tokens);
  panel->randomSeed()->setChecked(false);
  panel->seed()->setValue(seed);
  return panel->generationConfig();
}

bool wait_ready(ChatView& view, int side) {
  QElapsedTimer timer;
  timer.start();
  while (view.runner(side)->state() != ChatModelRunner::State::Ready) {
    if (timer.elapsed() > kLoadTimeoutMs || view.runner(side)->state() == ChatModelRunner::State::Failed) return false;
    QTest::qWait(5);
  }
  return true;
}

bool send_and_wait(ChatView& view, const QString& text, bool* ok = nullptr) {
  QSignalSpy finished(&view, &ChatView::turnFinished);
  if (!view.send(text)) return false;
  if (!finished.wait(kReplyTimeoutMs)) return false;
  if (ok) *ok = finished.first().first().toBool();
  return true;
}

std::vector<store::Message> messages_of(StudioContext& ctx, store::Id conversation) {
  const auto full = ctx.database().conversation(conversation);
  return full ? full->messages : std::vector<store::Message>{};
}

// AQLM_CHAT_GRAB=DIR saves what the view looks like (for a person to look at; not checked).
void grab_if_asked(QWidget& view, const char* name) {
  const QString dir = qEnvironmentVariable("AQLM_CHAT_GRAB");
  if (dir.isEmpty()) return;
  view.resize(1400, 800);
  view.show();
  QTest::qWait(100);
  view.grab().save(QDir(dir).filePath(QString::fromLatin1(name)));
}

}  // namespace

class ChatViewTest : public QObject {
  Q_OBJECT
 private:
  std::optional<std::filesystem::path> stories_;

 private Q_SLOTS:
  void init() {
    stories_ = test::shared_file("models/stories260K/stories260K.bin");
    if (!stories_) QSKIP("shared stories260K is absent (set AQLM_SHARED_DIR)");
  }

  void aReplyStreamsTokenByTokenAndIsStored() {
    auto f = make_fixture(QStringLiteral("chat-stream"));
    add_library_model(*f->context, *stories_, "stories260K");
    ChatView view(*f->context);
    view.selectModel(QString::fromStdString(stories_->string()));
    QVERIFY2(wait_ready(view, 0), qPrintable(view.statusText(0)));
    QVERIFY2(view.statusText(0).startsWith(QStringLiteral("llama · 0.26 M parameters · llama2.c · cpu · context 512 tokens")), qPrintable(view.statusText(0)));
    const GenerationConfig config = set_sampling(view, 0.0, 40);

    // Order of events: every piece must arrive, as its own signal, while the turn is running.
    QStringList pieces;
    int pieces_while_busy = 0;
    bool finished_seen = false, piece_after_finish = false;
    connect(&view, &ChatView::replyPiece, this, [&](int side, const QString& piece) {
      QCOMPARE(side, 0);
      pieces << piece;
      pieces_while_busy += view.busy() ? 1 : 0;
      piece_after_finish |= finished_seen;
    });
    connect(&view, &ChatView::replyFinished, this, [&](int) { finished_seen = true; });
    bool ok = false;
    QVERIFY(send_and_wait(view, QStringLiteral("Tell me a story."), &ok));
    QVERIFY(ok);
    QVERIFY(!view.busy());

    const Reference ref = reference_chat(*stories_, "", {"Tell me a story."}, config);
    QCOMPARE(pieces.join(QString()), QString::fromStdString(ref.replies[0]));
    QVERIFY2(pieces.size() > 10, qPrintable(QString::number(pieces.size())));  // one per token, not one block
    QCOMPARE(pieces_while_busy, int(pieces.size()));
    QVERIFY(!piece_after_finish);

    // Shown with its figures.
    ChatTranscript* t = view.transcript(0);
    QCOMPARE(t->messageCount(), 2);
    QCOMPARE(t->messageText(0), QStringLiteral("Tell me a story."));
    QCOMPARE(t->messageText(1), QString::fromStdString(ref.replies[0]));
    const QString figures = t->messageFigures(1);
    QVERIFY2(figures.contains(QStringLiteral("%1 tokens · ").arg(ref.generated[0])), qPrintable(figures));
    QVERIFY2(figures.contains(QStringLiteral(" tokens/s · first token after ")), qPrintable(figures));
    QCOMPARE(view.contextText(0), QStringLiteral("context: %1 of 512 tokens").arg(ref.context_used));

    // Stored in the database with its numbers.
    QVERIFY(view.conversationId());
    const auto full = f->context->database().conversation(*view.conversationId());
    QVERIFY(full);
    QCOMPARE(full->conversation.title, std::string("Tell me a story."));
    QVERIFY(full->conversation.model_id.has_value());
    QCOMPARE(full->conversation.sampling.value("temperature", -1.0), 0.0);
    QCOMPARE(full->conversation.sampling.value("max_new_tokens", -1), 40);
    QCOMPARE(full->messages.size(), size_t(2));
    QCOMPARE(full->messages[0].role, store::MessageRole::User);
    QCOMPARE(full->messages[1].role, store::MessageRole::Assistant);
    QCOMPARE(full->messages[1].content, ref.replies[0]);
    QCOMPARE(full->messages[1].tokens, std::int64_t(ref.generated[0]));
    QVERIFY(full->messages[1].tokens_per_second.value_or(0) > 0);
    QVERIFY(full->messages[1].time_to_first_token_s.value_or(0) > 0);
    QCOMPARE(view.lastStats(0)->decode_tokens_per_s, *full->messages[1].tokens_per_second);
    QVERIFY(f->errors.isEmpty());
    grab_if_asked(view, "chat-single.png");
  }

  void stopCancelsMidReplyAndKeepsWhatWasWritten() {
    auto f = make_fixture(QStringLiteral("chat-stop"));
    ChatView view(*f->context);
    view.selectModel(QString::fromStdString(stories_->string()));  // not in the library: added by path
    QVERIFY(wait_ready(view, 0));
    // Without Stop this reply would run until the 512-token context is full.
    const GenerationConfig config = set_sampling(view, 0.0, 5000);
    int pieces = 0;
    connect(&view, &ChatView::replyPiece, this, [&](int, const QString&) {
      if (++pieces == 3) view.stop();
    });
    QVERIFY(send_and_wait(view, QStringLiteral("Once upon a time")));
    QVERIFY(view.lastStats(0));
    QCOMPARE(view.lastStats(0)->stop_reason, StopReason::Cancelled);
    const int generated = view.lastStats(0)->generated_tokens;
    // The worker notices the flag at its next token; the UI saw the 3rd piece some tokens later
    // at most. Far below the ~470 tokens the context allows: the reply was cut short.
    qInfo("stopped after %d tokens", generated);
    QVERIFY2(generated >= 3 && generated < 300, qPrintable(QString::number(generated)));
    QVERIFY(view.transcript(0)->messageFigures(1).endsWith(QStringLiteral(" · stopped")));

    // What was kept is the start of the uninterrupted reply, and it is what the database holds.
    const Reference full = reference_chat(*stories_, "", {"Once upon a time"}, config);
    const std::string kept = view.transcript(0)->messageText(1).toStdString();
    QVERIFY(!kept.empty());
    QVERIFY(full.replies[0].size() > kept.size());
    QCOMPARE(full.replies[0].substr(0, kept.size()), kept);
    const auto messages = messages_of(*f->context, *view.conversationId());
    QCOMPARE(messages.size(), size_t(2));
    QCOMPARE(messages[1].content, kept);
    QCOMPARE(messages[1].tokens, std::int64_t(generated));
    // Without a library row the conversation keeps the model's path itself.
    const auto conversation = f->context->database().conversation(*view.conversationId())->conversation;
    QVERIFY(!conversation.model_id && !conversation.run_id);
    QCOMPARE(conversation.sampling["studio"]["model_path"].get<std::string>(), stories_->string());
  }

  void regenerateReplacesTheLastReply() {
    auto f = make_fixture(QStringLiteral("chat-regenerate"));
    add_library_model(*f->context, *stories_, "stories260K");
    ChatView view(*f->context);
    view.selectModel(QString::fromStdString(stories_->string()));
    QVERIFY(wait_ready(view, 0));
    const GenerationConfig config = set_sampling(view, 1.0, 30, 7);
    QVERIFY(send_and_wait(view, QStringLiteral("Tell me about a cat.")));
    const auto before = messages_of(*f->context, *view.conversationId());
    QCOMPARE(before.size(), size_t(2));

    QSignalSpy finished(&view, &ChatView::turnFinished);
    QVERIFY(view.regenerate());
    QVERIFY(finished.wait(kReplyTimeoutMs));
    const auto after = messages_of(*f->context, *view.conversationId());
    QCOMPARE(after.size(), size_t(2));  // replaced, not added
    QCOMPARE(after[0].id, before[0].id);
    QCOMPARE(after[0].content, before[0].content);
    QVERIFY(after[1].content != before[1].content);  // 30 tokens at temperature 1, another seed
    QCOMPARE(view.transcript(0)->messageCount(), 2);
    QCOMPARE(view.transcript(0)->messageText(1), QString::fromStdString(after[1].content));
    // The session's rule: reply k samples with seed + k, so the regenerated reply is the one a
    // session gives when asked to regenerate once.
    const Reference ref = reference_chat(*stories_, "", {"Tell me about a cat."}, config, 1);
    QCOMPARE(after[1].content, ref.replies[0]);
    QCOMPARE(before[1].content, reference_chat(*stories_, "", {"Tell me about a cat."}, config).replies[0]);
  }

  void conversationsReloadAfterRecreatingTheView() {
    auto f = make_fixture(QStringLiteral("chat-reload"));
    add_library_model(*f->context, *stories_, "stories260K");
    store::Id id = 0;
    GenerationConfig config;
    {
      ChatView view(*f->context);
      view.selectModel(QString::fromStdString(stories_->string()));
      QVERIFY(wait_ready(view, 0));
      view.settingsPanel()->setSystemPrompt(QStringLiteral("You tell short stories."));
      config = set_sampling(view, 0.0, 20);
      QVERIFY(send_and_wait(view, QStringLiteral("A story about a dog.")));
      QVERIFY(send_and_wait(view, QStringLiteral("And then?")));
      id = *view.conversationId();
    }
    // A restart: a new context on the same database file, and a new view.
    f->context.reset();
    auto g = make_fixture(QString(), /*fresh=*/false);
    ChatView view(*g->context);
    auto* list = view.findChild<QListWidget*>(QStringLiteral("chatConversations"));
    QVERIFY(list);
    QCOMPARE(list->count(), 1);
    QVERIFY2(list->item(0)->text().startsWith(QStringLiteral("A story about a dog.\nstories260K · 4 messages")),
             qPrintable(list->item(0)->text()));
    QCOMPARE(list->item(0)->data(Qt::UserRole).toLongLong(), id);
    QVERIFY(view.openConversation(id));

    const Reference ref = reference_chat(*stories_, "You tell short stories.", {"A story about a dog.", "And then?"}, config);
    ChatTranscript* t = view.transcript(0);
    QCOMPARE(t->messageCount(), 4);
    QCOMPARE(t->messageText(0), QStringLiteral("A story about a dog."));
    QCOMPARE(t->messageText(1), QString::fromStdString(ref.replies[0]));
    QCOMPARE(t->messageText(2), QStringLiteral("And then?"));
    QCOMPARE(t->messageText(3), QString::fromStdString(ref.replies[1]));
    QVERIFY(t->messageFigures(3).contains(QStringLiteral(" tokens/s")));
    QCOMPARE(view.settingsPanel()->systemPrompt(), QStringLiteral("You tell short stories."));
    QCOMPARE(view.settingsPanel()->temperature()->value(), 0.0);
    QCOMPARE(view.settingsPanel()->maxNewTokens()->value(), 20);
    QVERIFY(!view.settingsPanel()->randomSeed()->isChecked());

    // The model comes back with the conversation, which goes on where it stopped.
    QVERIFY(wait_ready(view, 0));
    QVERIFY(send_and_wait(view, QStringLiteral("The end.")));
    QCOMPARE(*view.conversationId(), id);
    const auto messages = messages_of(*g->context, id);
    QCOMPARE(messages.size(), size_t(6));
    const Reference three =
        reference_chat(*stories_, "You tell short stories.", {"A story about a dog.", "And then?", "The end."}, config);
    QCOMPARE(messages[5].content, three.replies[2]);
  }

  void exportWritesTheConversationAsMarkdown() {
    auto f = make_fixture(QStringLiteral("chat-export"));
    add_library_model(*f->context, *stories_, "stories260K");
    ChatView view(*f->context);
    view.selectModel(QString::fromStdString(stories_->string()));
    QVERIFY(wait_ready(view, 0));
    view.settingsPanel()->setSystemPrompt(QStringLiteral("Be brief.\nUse simple words."));
    set_sampling(view, 0.0, 12);
    QVERIFY(send_and_wait(view, QStringLiteral("Hello")));

    const QString file = QString::fromStdString((f->data / "chat.md").string());
    QVERIFY(view.exportMarkdown(file));
    QFile in(file);
    QVERIFY(in.open(QIODevice::ReadOnly));
    const QString markdown = QString::fromUtf8(in.readAll());

    const auto full = f->context->database().conversation(*view.conversationId());
    const store::Message& reply = full->messages[1];
    const double ttft = *reply.time_to_first_token_s;  // written in s from 1 s on, in ms below
    const QString started = QDateTime::fromMSecsSinceEpoch(full->conversation.created.time_since_epoch().count(), Qt::UTC)
                                .toString(QStringLiteral("yyyy-MM-dd HH:mm"));
    const QString expected =
        QStringLiteral("# Hello\n\n"
                       "- **Model:** stories260K (`%1`)\n"
                       "- **Started:** %2 UTC\n"
                       "- **Sampling:** temperature 0, top-k off, top-p 0.9, min-p 0, repetition penalty 1.1, "
                       "at most 12 reply tokens, seed 0\n\n"
                       "## System prompt\n\n> Be brief.\n> Use simple words.\n\n"
                       "## You\n\nHello\n\n"
                       "## Assistant\n\n%3\n\n*%4 tokens · %5 tokens/s · first token after %6*\n\n")
            .arg(QString::fromStdString(stories_->string()), started, QString::fromStdString(reply.content))
            .arg(reply.tokens)
            .arg(*reply.tokens_per_second, 0, 'f', 1)
            .arg(ttft >= 1 ? QString::number(ttft, 'f', 2) + " s" : QString::number(ttft * 1000, 'f', ttft < 0.01 ? 1 : 0) + " ms");
    QCOMPARE(markdown, expected);

    // A folder that does not exist: an error naming the file, and nothing written.
    const QString bad = QString::fromStdString((f->data / "missing" / "chat.md").string());
    QVERIFY(!view.exportMarkdown(bad));
    QCOMPARE(f->errors.size(), 1);
    QVERIFY2(f->errors[0].startsWith(QStringLiteral("Chat: export failed: ") + bad), qPrintable(f->errors[0]));
  }

  void abProducesTwoRepliesFromTwoModels() {
    const auto tiny = std::filesystem::path(AQLM_SOURCE_DIR) / "tests/fixtures/model/tiny_llama.gguf";
    auto f = make_fixture(QStringLiteral("chat-ab"));
    add_library_model(*f->context, *stories_, "stories260K");
    ChatView view(*f->context);
    view.selectModel(QString::fromStdString(stories_->string()));
    view.selectModelB(QString::fromStdString(tiny.string()));
    QVERIFY(view.abEnabled());
    QVERIFY(wait_ready(view, 0));
    QVERIFY2(wait_ready(view, 1), qPrintable(view.statusText(1)));
    const GenerationConfig config = set_sampling(view, 0.0, 16);

    std::vector<int> order;  // the side of every piece
    connect(&view, &ChatView::replyPiece, this, [&](int side, const QString&) { order.push_back(side); });
    QVERIFY(send_and_wait(view, QStringLiteral("Hello there")));
    QVERIFY(!order.empty() && order.front() == 0 && order.back() == 1);
    QVERIFY(std::is_sorted(order.begin(), order.end()));  // A wrote, then B: never both at once

    const std::string reply_a = reference_chat(*stories_, "", {"Hello there"}, config).replies[0];
    const std::string reply_b = reference_chat(tiny, "", {"Hello there"}, config).replies[0];
    QVERIFY(reply_a != reply_b);
    QCOMPARE(view.transcript(0)->messageText(1), QString::fromStdString(reply_a));
    QCOMPARE(view.transcript(1)->messageText(1), QString::fromStdString(reply_b));
    QCOMPARE(view.transcript(1)->messageText(0), QStringLiteral("Hello there"));

    // Two conversations, B pointing at A, shown as one entry.
    const auto conversations = f->context->database().list_conversations();
    QCOMPARE(conversations.size(), size_t(2));
    const store::Id a = *view.conversationId();
    for (const auto& c : conversations) {
      const auto messages = messages_of(*f->context, c.id);
      QCOMPARE(messages.size(), size_t(2));
      if (c.id == a) {
        QCOMPARE(messages[1].content, reply_a);
        QCOMPARE(c.sampling["studio"]["ab_side"].get<std::string>(), std::string("A"));
      } else {
        QCOMPARE(messages[1].content, reply_b);
        QCOMPARE(c.sampling["studio"]["ab_partner"].get<store::Id>(), a);
      }
    }
    auto* list = view.findChild<QListWidget*>(QStringLiteral("chatConversations"));
    QCOMPARE(list->count(), 1);
    QVERIFY2(list->item(0)->text().contains(QStringLiteral("stories260K vs tiny_llama.gguf")), qPrintable(list->item(0)->text()));

    const QString file = QString::fromStdString((f->data / "ab.md").string());
    QVERIFY(view.exportMarkdown(file));
    QFile in(file);
    QVERIFY(in.open(QIODevice::ReadOnly));
    const QString markdown = QString::fromUtf8(in.readAll());
    QVERIFY(markdown.contains(QStringLiteral("## Assistant A — stories260K\n\n") + QString::fromStdString(reply_a)));
    QVERIFY(markdown.contains(QStringLiteral("## Assistant B — tiny_llama.gguf\n\n") + QString::fromStdString(reply_b)));
    QCOMPARE(markdown.count(QStringLiteral("## You\n\nHello there")), 1);
    grab_if_asked(view, "chat-ab.png");

    // Reopened, it is A/B again with both columns.
    view.newConversation();
    view.setABEnabled(false);
    QVERIFY(view.openConversation(a));
    QVERIFY(view.abEnabled());
    QCOMPARE(view.transcript(1)->messageText(1), QString::fromStdString(reply_b));
  }

  void stopInABEndsTheTurnForBothModels() {
    const auto tiny = std::filesystem::path(AQLM_SOURCE_DIR) / "tests/fixtures/model/tiny_llama.gguf";
    auto f = make_fixture(QStringLiteral("chat-ab-stop"));
    ChatView view(*f->context);
    view.selectModel(QString::fromStdString(stories_->string()));
    view.selectModelB(QString::fromStdString(tiny.string()));
    QVERIFY(wait_ready(view, 0) && wait_ready(view, 1));
    set_sampling(view, 0.0, 5000);
    int pieces_a = 0, pieces_b = 0;
    connect(&view, &ChatView::replyPiece, this, [&](int side, const QString&) {
      if (side == 1) ++pieces_b;
      if (side == 0 && ++pieces_a == 3) view.stop();
    });
    QVERIFY(send_and_wait(view, QStringLiteral("Once upon a time")));
    QCOMPARE(pieces_b, 0);  // B had not begun: it does not start after a Stop
    QCOMPARE(view.lastStats(0)->stop_reason, StopReason::Cancelled);
    QCOMPARE(view.transcript(1)->messageText(1), QString());
    QCOMPARE(view.transcript(1)->messageFigures(1), QStringLiteral("stopped before it began"));
    // Both conversations keep the turn (B's reply empty), so the next turn lines up on both sides.
    const auto conversations = f->context->database().list_conversations();
    QCOMPARE(conversations.size(), size_t(2));
    for (const auto& c : conversations) QCOMPARE(messages_of(*f->context, c.id).size(), size_t(2));
    set_sampling(view, 0.0, 6);
    QVERIFY(send_and_wait(view, QStringLiteral("The end.")));
    for (const auto& c : conversations) {
      const auto messages = messages_of(*f->context, c.id);
      QCOMPARE(messages.size(), size_t(4));
      QCOMPARE(messages[2].content, std::string("The end."));
    }
    QCOMPARE(view.transcript(1)->messageCount(), 4);

    // Another model for A starts a new conversation; the old one stays in the list.
    const store::Id old = *view.conversationId();
    view.setABEnabled(false);
    QVERIFY(!view.conversationId());  // A/B off: the pair was a conversation of two models
    QVERIFY(view.openConversation(old));
    view.selectModel(QString::fromStdString(tiny.string()));
    QVERIFY(!view.conversationId());
    QCOMPARE(view.transcript(0)->messageCount(), 0);
    QCOMPARE(view.findChild<QListWidget*>(QStringLiteral("chatConversations"))->count(), 1);
  }

  void aModelThatFailsToLoadSaysWhyAndTheViewStaysUsable() {
    auto f = make_fixture(QStringLiteral("chat-bad-model"));
    const std::filesystem::path broken = f->data / "broken.gguf";
    std::ofstream(broken) << "this is not a model";
    ChatView view(*f->context);
    QSignalSpy failed(&view, &ChatView::modelFailed);
    view.selectModel(QString::fromStdString(broken.string()));
    QVERIFY(failed.wait(kLoadTimeoutMs));
    const QString error = failed.first().at(1).toString();
    QVERIFY2(error.contains(QString::fromStdString(broken.string())), qPrintable(error));  // names the file
    QVERIFY(!error.contains(QLatin1Char('\n')));
    QCOMPARE(f->errors.size(), 1);
    QCOMPARE(f->errors[0], QStringLiteral("Chat: the model could not be loaded: ") + error);
    QCOMPARE(view.statusText(0), QStringLiteral("Could not load: ") + error);
    QVERIFY(!view.send(QStringLiteral("hello")));
    QVERIFY(!view.findChild<QPushButton*>(QStringLiteral("chatSend"))->isEnabled());

    // Another model works.
    view.selectModel(QString::fromStdString(stories_->string()));
    QVERIFY(wait_ready(view, 0));
    set_sampling(view, 0.0, 8);
    bool ok = false;
    QVERIFY(send_and_wait(view, QStringLiteral("hello"), &ok));
    QVERIFY(ok);
    QCOMPARE(view.transcript(0)->messageCount(), 2);

    // A message longer than the 512-token context: the turn is undone and the text given back.
    f->errors.clear();
    const QString long_text = QString(QStringLiteral("word ")).repeated(600);
    QVERIFY(send_and_wait(view, long_text, &ok));
    QVERIFY(!ok);
    QCOMPARE(view.transcript(0)->messageCount(), 2);
    QCOMPARE(view.input()->toPlainText(), long_text);
    QCOMPARE(messages_of(*f->context, *view.conversationId()).size(), size_t(2));
    QCOMPARE(f->errors.size(), 1);
    QVERIFY2(f->errors[0].contains(QStringLiteral("tokens but the context holds 512")), qPrintable(f->errors[0]));
  }

  void aModelTheGpuRefusesIsChattedWithOnTheCpu() {
    // The studio asks for the GPU where one works; when it refuses the model (here: no CUDA
    // backend or no GPU; on a GPU machine the model simply loads there) the chat still opens.
    ChatModelRunner runner;
    QSignalSpy loaded(&runner, &ChatModelRunner::loaded);
    EngineOptions options;
    options.device = Device::Cuda;
    runner.load(QString::fromStdString(stories_->string()), options);
    QVERIFY(loaded.wait(kLoadTimeoutMs));
    QCOMPARE(runner.state(), ChatModelRunner::State::Ready);
    const QString description = runner.info().description;
    if (cuda_device_count() > 0) {
      QVERIFY2(description.contains(QStringLiteral("cuda")) && !description.contains(QStringLiteral("not on the GPU")),
               qPrintable(description));
    } else {
      QVERIFY2(description.contains(QStringLiteral(" · cpu (not on the GPU: ")), qPrintable(description));
    }
  }

  void theUiStaysResponsiveWhileAModelLoadsAndWrites() {
    auto f = make_fixture(QStringLiteral("chat-responsive"));
    ChatView view(*f->context);
    view.resize(1200, 800);
    view.show();
    // The first paint (fonts, styles) is start-up cost, not what a load or a reply does to the UI.
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QTest::qWait(50);
    // A 5 ms timer on the UI thread: the longest gap between its ticks is the event loop's latency.
    QElapsedTimer clock;
    clock.start();
    qint64 last = 0, worst = 0;
    QTimer ticker;
    ticker.setInterval(5);
    connect(&ticker, &QTimer::timeout, this, [&] {
      const qint64 now = clock.elapsed();
      worst = std::max(worst, now - last);
      last = now;
    });
    // SmolLM2 (98 MB, dequantized on load) when it is installed makes the load long enough to matter.
    const auto smollm2 = std::filesystem::path(qEnvironmentVariable("HOME").toStdString()) /
                         ".cache/aqlm-studio/models/SmolLM2-135M-Instruct.Q4_1.gguf";
    const std::filesystem::path model = std::filesystem::exists(smollm2) ? smollm2 : *stories_;
    last = clock.elapsed();
    ticker.start();
    view.selectModel(QString::fromStdString(model.string()));
    QVERIFY(wait_ready(view, 0));
    const qint64 load_worst = worst;
    set_sampling(view, 0.0, model == *stories_ ? 400 : 48);
    QVERIFY(send_and_wait(view, QStringLiteral("Write a long story.")));
    ticker.stop();
    qInfo("event-loop latency: %lld ms at worst while loading %s, %lld ms overall", load_worst,
          model.filename().c_str(), worst);
    // 100 ms is where a UI starts to feel stuck; a blocked UI thread would show seconds here.
    QVERIFY2(worst < 100, qPrintable(QString::number(worst)));
  }
};

QTEST_MAIN(ChatViewTest)
#include "chat_view_test.moc"
