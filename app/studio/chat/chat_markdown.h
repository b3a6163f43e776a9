#pragma once
// Text the Chat tab writes: the figures line under a reply and the Markdown export.
#include <QString>

#include <optional>

#include "app/studio/chat/chat_conversation.h"
#include "core/runtime/generator.h"

namespace aqlm::studio {

// "7 tokens · 31.2 tokens/s · first token after 210 ms" (seconds from 1 s on), with " · stopped", " · context full"
// or " · length limit" when the reply did not end by itself.
QString reply_figures(const store::MessageInfo& reply, std::optional<StopReason> stop = std::nullopt);

// "temperature 0.7, top-k off, top-p 0.9, min-p 0, repetition penalty 1.1, at most 512 reply
// tokens, random seed" from the conversation's sampling JSON.
QString sampling_summary(const nlohmann::json& sampling);

// The conversation as Markdown: title, model(s), start time (UTC), sampling, system prompt, then
// each user message followed by each model's reply with its figures. Replies are written as the
// model wrote them (chat models answer in Markdown).
QString chat_markdown(const ChatConversationRecord& record);

}  // namespace aqlm::studio
