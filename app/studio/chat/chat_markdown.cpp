#include "app/studio/chat/chat_markdown.h"

#include <QDateTime>
#include <QStringList>

namespace aqlm::studio {

namespace {

QString number(double value, int decimals) { return QString::number(value, 'f', decimals); }

// "1.42 s" from a second on, "38 ms" below, "2.5 ms" below 10 ms (a small model answers in milliseconds).
QString seconds(double s) {
  if (s >= 1.0) return number(s, 2) + QStringLiteral(" s");
  return number(s * 1000, s < 0.01 ? 1 : 0) + QStringLiteral(" ms");
}

// Numbers as the settings panel shows them: 0.7, 1.1, 0 (no trailing zeros).
QString setting(const nlohmann::json& sampling, const char* key) {
  const auto it = sampling.find(key);
  if (it == sampling.end() || !it->is_number()) return QStringLiteral("?");
  return QString::number(it->get<double>(), 'g', 6);
}

QString quoted(const QString& text) {
  QStringList lines = text.split(QLatin1Char('\n'));
  for (QString& line : lines) line = line.isEmpty() ? QStringLiteral(">") : QStringLiteral("> ") + line;
  return lines.join(QLatin1Char('\n'));
}

QString utc(store::Timestamp t) {
  return QDateTime::fromMSecsSinceEpoch(t.time_since_epoch().count(), Qt::UTC)
             .toString(QStringLiteral("yyyy-MM-dd HH:mm 'UTC'"));
}

}  // namespace

QString reply_figures(const store::MessageInfo& reply, std::optional<StopReason> stop) {
  QStringList parts;
  parts << (reply.tokens == 1 ? QStringLiteral("1 token") : QStringLiteral("%1 tokens").arg(reply.tokens));
  if (reply.tokens_per_second) parts << QStringLiteral("%1 tokens/s").arg(number(*reply.tokens_per_second, 1));
  if (reply.time_to_first_token_s) parts << QStringLiteral("first token after %1").arg(seconds(*reply.time_to_first_token_s));
  if (stop == StopReason::Cancelled) parts << QStringLiteral("stopped");
  if (stop == StopReason::ContextFull) parts << QStringLiteral("context full");
  if (stop == StopReason::MaxTokens) parts << QStringLiteral("length limit");
  return parts.join(QStringLiteral(" · "));
}

QString sampling_summary(const nlohmann::json& s) {
  const auto top_k = s.find("top_k");
  const bool k_off = top_k == s.end() || !top_k->is_number() || top_k->get<double>() == 0;
  const auto seed = s.find("seed");
  const QString seed_text = seed != s.end() && seed->is_number() ? QStringLiteral("seed %1").arg(setting(s, "seed"))
                                                                  : QStringLiteral("random seed");
  return QStringLiteral("temperature %1, top-k %2, top-p %3, min-p %4, repetition penalty %5, at most %6 reply "
                        "tokens, %7")
      .arg(setting(s, "temperature"), k_off ? QStringLiteral("off") : setting(s, "top_k"), setting(s, "top_p"),
           setting(s, "min_p"), setting(s, "repetition_penalty"), setting(s, "max_new_tokens"), seed_text);
}

QString chat_markdown(const ChatConversationRecord& record) {
  QString md = QStringLiteral("# %1\n\n").arg(record.title);
  const bool ab = record.sides.size() > 1;
  auto model_line = [](const ChatSideRecord& side) {
    return QStringLiteral("%1 (`%2`)").arg(side.modelName, side.modelPath);
  };
  if (ab) {
    md += QStringLiteral("- **Model A:** %1\n- **Model B:** %2\n").arg(model_line(record.sides[0]),
                                                                      model_line(record.sides[1]));
  } else if (!record.sides.empty()) {
    md += QStringLiteral("- **Model:** %1\n").arg(model_line(record.sides[0]));
  }
  md += QStringLiteral("- **Started:** %1\n").arg(utc(record.created));
  md += QStringLiteral("- **Sampling:** %1\n\n").arg(sampling_summary(record.sampling));
  if (!record.systemPrompt.isEmpty()) md += QStringLiteral("## System prompt\n\n%1\n\n").arg(quoted(record.systemPrompt));

  size_t longest = 0;
  for (const ChatSideRecord& side : record.sides) longest = std::max(longest, side.messages.size());
  for (size_t i = 0; i < longest; ++i) {
    for (size_t s = 0; s < record.sides.size(); ++s) {
      const auto& messages = record.sides[s].messages;
      if (i >= messages.size()) continue;
      const store::Message& m = messages[i];
      const QString content = QString::fromStdString(m.content);
      if (m.role == store::MessageRole::User) {
        if (s == 0) md += QStringLiteral("## You\n\n%1\n\n").arg(content);  // the same on every side
      } else if (m.role == store::MessageRole::Assistant) {
        const QString heading = ab ? QStringLiteral("Assistant %1 — %2").arg(QChar(u'A' + int(s))).arg(record.sides[s].modelName)
                                   : QStringLiteral("Assistant");
        md += QStringLiteral("## %1\n\n%2\n\n*%3*\n\n").arg(heading, content, reply_figures(m));
      }
    }
  }
  return md;
}

}  // namespace aqlm::studio
