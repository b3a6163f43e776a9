#pragma once
// Chat conversations as the run database keeps them. One conversation row per model, linked to
// its library model or run (store::ConversationInfo), with every user message and reply. An
// A/B conversation is two rows with the same user messages, one per model; the B row names
// its A partner. What the store has no column for rides in the conversation's `sampling` JSON
// under "studio": {"model_path", "model_name", "ab_side" ("A"/"B"), "ab_partner"}; the path
// lets a conversation find its model again after the library row is gone.
#include <QString>

#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/store/records.h"
#include "core/store/run_database.h"

namespace aqlm::studio {

struct ChatModel;

struct ChatSideRecord {
  store::Id conversationId = 0;
  QString modelPath;
  QString modelName;
  std::vector<store::Message> messages;  // oldest first: user, assistant, user, ...
};

struct ChatConversationRecord {
  QString title;
  QString systemPrompt;
  nlohmann::json sampling = nlohmann::json::object();  // without the "studio" key
  store::Timestamp created;
  std::vector<ChatSideRecord> sides;  // 1, or 2 for A/B (A first)
};

// One entry of the conversation list: a plain conversation or the A row of an A/B pair.
struct ChatListEntry {
  store::Id id = 0;
  QString title;
  QString modelNames;  // "SmolLM2-135M-Instruct" or "A vs B"
  std::int64_t messageCount = 0;
  store::Timestamp lastActivity;
};

// Creates the conversation rows for `models` (one, or two for A/B) and returns their ids,
// A first. The title is the first user message, shortened.
std::vector<store::Id> create_chat_conversation(store::RunDatabase& db, const QString& firstMessage,
                                                const std::vector<ChatModel>& models, const QString& systemPrompt,
                                                const nlohmann::json& sampling);
// Reads a conversation (and its B partner); nullopt when `id` is gone.
std::optional<ChatConversationRecord> load_chat_conversation(store::RunDatabase& db, store::Id id);
// Newest activity first; B rows are folded into their A.
std::vector<ChatListEntry> list_chat_conversations(store::RunDatabase& db);
// Removes the conversation and its B partner.
void remove_chat_conversation(store::RunDatabase& db, store::Id id);

// A title from the first message: its first line, at most 60 characters.
QString chat_title(const QString& firstMessage);

}  // namespace aqlm::studio
