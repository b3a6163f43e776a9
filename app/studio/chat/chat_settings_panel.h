#pragma once
// The Chat tab's side panel: the system prompt and the sampling settings. Kept with each
// conversation in the run database as the conversation's `sampling` JSON object.
#include <QWidget>

#include <nlohmann/json.hpp>

#include "core/runtime/generator.h"

class QCheckBox;
class QDoubleSpinBox;
class QPlainTextEdit;
class QSpinBox;

namespace aqlm::studio {

class ChatSettingsPanel : public QWidget {
  Q_OBJECT
 public:
  explicit ChatSettingsPanel(QWidget* parent = nullptr);

  QString systemPrompt() const;
  void setSystemPrompt(const QString& text);

  // The settings as a GenerationConfig. With "random seed" ticked, each call draws a fresh seed.
  GenerationConfig generationConfig() const;
  // {"temperature", "top_k", "top_p", "min_p", "repetition_penalty", "max_new_tokens", "seed"
  // (null when random)}.
  nlohmann::json samplingJson() const;
  // Takes the values a conversation was saved with; keys that are absent keep the defaults,
  // values out of range are clamped to the controls' ranges.
  void setSamplingJson(const nlohmann::json& sampling);
  void resetToDefaults();

  // For tests and scripts: the controls by name.
  QDoubleSpinBox* temperature() const { return temperature_; }
  QSpinBox* maxNewTokens() const { return max_new_tokens_; }
  QSpinBox* seed() const { return seed_; }
  QCheckBox* randomSeed() const { return random_seed_; }

 Q_SIGNALS:
  void systemPromptChanged();

 private:
  QPlainTextEdit* system_prompt_;
  QDoubleSpinBox* temperature_;
  QSpinBox* top_k_;
  QDoubleSpinBox* top_p_;
  QDoubleSpinBox* min_p_;
  QDoubleSpinBox* repetition_penalty_;
  QSpinBox* max_new_tokens_;
  QSpinBox* seed_;
  QCheckBox* random_seed_;
};

}  // namespace aqlm::studio
