#include "app/studio/chat/chat_conversation.h"

#include <QFileInfo>

#include <algorithm>
#include <map>

#include "app/studio/studio_context.h"

namespace aqlm::studio {

namespace {

constexpr const char* kStudioKey = "studio";

nlohmann::json studio_part(const store::Conversation& c) {
  const auto it = c.sampling.find(kStudioKey);
  return it != c.sampling.end() && it->is_object() ? *it : nlohmann::json::object();
}

std::optional<store::Id> partner_of(const store::Conversation& c) {
  const nlohmann::json studio = studio_part(c);
  if (studio.value("ab_side", "") != "B") return std::nullopt;
  const auto it = studio.find("ab_partner");
  if (it == studio.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<store::Id>();
}

QString text_of(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? QString::fromStdString(it->get<std::string>()) : QString();
}

// The model's path: the library row or run it is linked to, else what the row recorded.
ChatSideRecord side_of(store::RunDatabase& db, const store::ConversationWithMessages& full) {
  ChatSideRecord side;
  const store::Conversation& c = full.conversation;
  side.conversationId = c.id;
  side.messages = full.messages;
  const nlohmann::json studio = studio_part(c);
  side.modelPath = text_of(studio, "model_path");
  side.modelName = text_of(studio, "model_name");
  if (c.model_id) {
    if (const auto model = db.find_model(*c.model_id)) side.modelPath = QString::fromStdString(model->path.string());
  } else if (c.run_id) {
    if (const auto run = db.find_run(*c.run_id); run && !run->output_dir.empty())
      side.modelPath = QString::fromStdString(run->output_dir.string());
  }
  if (side.modelName.isEmpty()) side.modelName = QFileInfo(side.modelPath).fileName();
  return side;
}

}  // namespace

QString chat_title(const QString& firstMessage) {
  QString title = firstMessage.trimmed().section(QLatin1Char('\n'), 0, 0).simplified();
  constexpr int kMax = 60;
  if (title.size() > kMax) title = title.left(kMax - 1).trimmed() + QStringLiteral("…");
  return title.isEmpty() ? QStringLiteral("Conversation") : title;
}

std::vector<store::Id> create_chat_conversation(store::RunDatabase& db, const QString& firstMessage,
                                                const std::vector<ChatModel>& models, const QString& systemPrompt,
                                                const nlohmann::json& sampling) {
  std::vector<store::Id> ids;
  for (size_t i = 0; i < models.size(); ++i) {
    const ChatModel& model = models[i];
    store::ConversationInfo info;
    info.title = chat_title(firstMessage).toStdString();
    info.model_id = model.modelId;
    info.run_id = model.modelId ? std::nullopt : model.runId;
    info.system_prompt = systemPrompt.toStdString();
    info.sampling = sampling.is_object() ? sampling : nlohmann::json::object();
    nlohmann::json studio = {{"model_path", model.path.toStdString()}, {"model_name", model.displayName.toStdString()}};
    if (models.size() > 1) studio["ab_side"] = i == 0 ? "A" : "B";
    if (i > 0) studio["ab_partner"] = ids.front();
    info.sampling[kStudioKey] = studio;
    ids.push_back(db.create_conversation(info));
  }
  return ids;
}

std::optional<ChatConversationRecord> load_chat_conversation(store::RunDatabase& db, store::Id id) {
  auto full = db.conversation(id);
  if (!full) return std::nullopt;
  if (const auto a = partner_of(full->conversation)) {  // asked for the B row: start from its A
    if (auto partner = db.conversation(*a)) full = std::move(partner);
  }
  ChatConversationRecord record;
  const store::Conversation& c = full->conversation;
  record.title = QString::fromStdString(c.title);
  record.systemPrompt = QString::fromStdString(c.system_prompt);
  record.sampling = c.sampling;
  record.sampling.erase(kStudioKey);
  record.created = c.created;
  record.sides.push_back(side_of(db, *full));
  if (studio_part(c).value("ab_side", "") == "A") {
    for (const store::ConversationSummary& other : db.list_conversations()) {
      if (partner_of(other) == c.id) {
        if (const auto b = db.conversation(other.id)) record.sides.push_back(side_of(db, *b));
        break;
      }
    }
  }
  return record;
}

std::vector<ChatListEntry> list_chat_conversations(store::RunDatabase& db) {
  const std::vector<store::ConversationSummary> all = db.list_conversations();
  std::map<store::Id, const store::ConversationSummary*> partner_b;  // A id -> its B row
  for (const auto& c : all) {
    if (const auto a = partner_of(c)) partner_b[*a] = &c;
  }
  std::vector<ChatListEntry> entries;
  for (const auto& c : all) {
    if (partner_of(c)) continue;
    ChatListEntry entry;
    entry.id = c.id;
    entry.title = QString::fromStdString(c.title);
    entry.messageCount = c.message_count;
    entry.lastActivity = c.last_activity;
    entry.modelNames = text_of(studio_part(c), "model_name");
    if (const auto it = partner_b.find(c.id); it != partner_b.end()) {
      entry.modelNames += QStringLiteral(" vs ") + text_of(studio_part(*it->second), "model_name");
      entry.lastActivity = std::max(entry.lastActivity, it->second->last_activity);
    }
    entries.push_back(std::move(entry));
  }
  std::stable_sort(entries.begin(), entries.end(),
                   [](const ChatListEntry& a, const ChatListEntry& b) { return a.lastActivity > b.lastActivity; });
  return entries;
}

void remove_chat_conversation(store::RunDatabase& db, store::Id id) {
  const auto record = load_chat_conversation(db, id);
  if (!record) return;
  for (const ChatSideRecord& side : record->sides) db.remove_conversation(side.conversationId);
}

}  // namespace aqlm::studio
