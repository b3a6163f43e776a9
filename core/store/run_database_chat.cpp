// RunDatabase: conversations and their messages.
#include "core/common/error.h"
#include "core/store/rows.h"
#include "core/store/run_database.h"
#include "core/store/sqlite.h"

namespace aqlm::store {
using rows::from_ms;
using rows::to_ms;

namespace {

constexpr const char* kConversationColumns =
    "c.id, c.title, c.model_id, c.run_id, c.system_prompt, c.sampling_json, c.created_ms";

Conversation read_conversation(const sql::Statement& row, const sql::Connection& connection) {
  Conversation c;
  c.id = row.integer(0);
  c.title = row.text(1);
  c.model_id = row.optional_integer(2);
  c.run_id = row.optional_integer(3);
  c.system_prompt = row.text(4);
  c.sampling = rows::json_column(row, 5, connection);
  c.created = from_ms(row.integer(6));
  return c;
}

}  // namespace

Id RunDatabase::create_conversation(const ConversationInfo& conversation) {
  const std::string doing = str("creating the conversation '", conversation.title, "'");
  AQLM_CHECK(!(conversation.model_id && conversation.run_id), file().string(), ": ", doing,
             " failed: a conversation is with a model or with a run's output, not both");
  AQLM_CHECK(conversation.sampling.is_object(), file().string(), ": ", doing,
             " failed: sampling settings must be a JSON object");
  sql::Transaction transaction(*connection_, doing);
  if (conversation.model_id) require_row("models", "model", *conversation.model_id);
  if (conversation.run_id) require_row("runs", "run", *conversation.run_id);
  auto query = connection_->query(
      "INSERT INTO conversations (title, model_id, run_id, system_prompt, sampling_json, created_ms) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  query->bind(1, conversation.title).bind(2, conversation.model_id).bind(3, conversation.run_id);
  query->bind(4, conversation.system_prompt).bind(5, conversation.sampling.dump()).bind(6, to_ms(now()));
  query->run(doing);
  const Id id = connection_->last_insert_rowid();
  transaction.commit();
  return id;
}

Id RunDatabase::add_message(Id conversation_id, const MessageInfo& message) {
  const std::string doing = str("adding a ", name(message.role), " message to conversation ", conversation_id);
  sql::Transaction transaction(*connection_, doing);
  require_row("conversations", "conversation", conversation_id);
  auto query = connection_->query(
      "INSERT INTO messages (conversation_id, role, content, tokens, tokens_per_second, time_to_first_token_s, "
      "created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  query->bind(1, conversation_id).bind(2, name(message.role)).bind(3, message.content).bind(4, message.tokens);
  query->bind(5, message.tokens_per_second).bind(6, message.time_to_first_token_s).bind(7, to_ms(now()));
  query->run(doing);
  const Id id = connection_->last_insert_rowid();
  transaction.commit();
  return id;
}

void RunDatabase::remove_message(Id message_id) {
  auto query = connection_->query("DELETE FROM messages WHERE id = ?1");
  query->bind(1, message_id).run(str("removing message ", message_id));
  AQLM_CHECK(connection_->changes() == 1, file().string(), ": message ", message_id, " does not exist");
}

void RunDatabase::rename_conversation(Id conversation_id, std::string_view title) {
  auto query = connection_->query("UPDATE conversations SET title = ?2 WHERE id = ?1");
  query->bind(1, conversation_id).bind(2, title).run(str("renaming conversation ", conversation_id));
  AQLM_CHECK(connection_->changes() == 1, file().string(), ": conversation ", conversation_id, " does not exist");
}

void RunDatabase::remove_conversation(Id conversation_id) {
  auto query = connection_->query("DELETE FROM conversations WHERE id = ?1");
  query->bind(1, conversation_id).run(str("removing conversation ", conversation_id));
  AQLM_CHECK(connection_->changes() == 1, file().string(), ": conversation ", conversation_id, " does not exist");
}

std::vector<ConversationSummary> RunDatabase::list_conversations() {
  static const std::string sql = str(
      "SELECT ", kConversationColumns, ", count(m.id), coalesce(max(m.created_ms), c.created_ms) AS last_ms "
      "FROM conversations AS c LEFT JOIN messages AS m ON m.conversation_id = c.id "
      "GROUP BY c.id ORDER BY last_ms DESC, c.id DESC");
  auto query = connection_->query(sql);
  std::vector<ConversationSummary> conversations;
  while (query->step("listing the conversations")) {
    ConversationSummary summary;
    static_cast<Conversation&>(summary) = read_conversation(*query, *connection_);
    summary.message_count = query->integer(7);
    summary.last_activity = from_ms(query->integer(8));
    conversations.push_back(std::move(summary));
  }
  return conversations;
}

std::optional<ConversationWithMessages> RunDatabase::conversation(Id conversation_id) {
  const std::string doing = str("reading conversation ", conversation_id);
  ConversationWithMessages result;
  {
    static const std::string sql = str("SELECT ", kConversationColumns, " FROM conversations AS c WHERE c.id = ?1");
    auto query = connection_->query(sql);
    query->bind(1, conversation_id);
    if (!query->step(doing)) return std::nullopt;
    result.conversation = read_conversation(*query, *connection_);
  }
  auto query = connection_->query(
      "SELECT id, role, content, tokens, tokens_per_second, time_to_first_token_s, created_ms FROM messages "
      "WHERE conversation_id = ?1 ORDER BY id");
  query->bind(1, conversation_id);
  while (query->step(doing)) {
    Message m;
    m.id = query->integer(0);
    m.conversation_id = conversation_id;
    m.role = parse_message_role(query->text(1));
    m.content = query->text(2);
    m.tokens = query->integer(3);
    m.tokens_per_second = query->optional_real(4);
    m.time_to_first_token_s = query->optional_real(5);
    m.created = from_ms(query->integer(6));
    result.messages.push_back(std::move(m));
  }
  return result;
}

}  // namespace aqlm::store
