#include "app/studio/chat/chat_settings_panel.h"

#include <QCheckBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

#include <limits>
#include <random>

namespace aqlm::studio {

namespace {

// The defaults of `aqlm-cli chat`: a little randomness, a nucleus of 0.9 and a mild repetition
// penalty, which small chat models need to avoid loops.
constexpr double kTemperature = 0.7;
constexpr double kTopP = 0.9;
constexpr double kRepetitionPenalty = 1.1;
constexpr int kMaxNewTokens = 512;

QDoubleSpinBox* spin(double min, double max, double step, int decimals, const QString& tip) {
  auto* box = new QDoubleSpinBox;
  box->setRange(min, max);
  box->setSingleStep(step);
  box->setDecimals(decimals);
  box->setToolTip(tip);
  box->setMinimumWidth(70);  // the panel is narrow; the range's widest text need not fit
  return box;
}

}  // namespace

ChatSettingsPanel::ChatSettingsPanel(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);

  auto* system_box = new QGroupBox(tr("System prompt"));
  auto* system_layout = new QVBoxLayout(system_box);
  system_prompt_ = new QPlainTextEdit;
  system_prompt_->setObjectName(QStringLiteral("chatSystemPrompt"));
  system_prompt_->setPlaceholderText(tr("Optional (empty: the model's template decides)"));
  system_prompt_->setMaximumHeight(110);
  system_layout->addWidget(system_prompt_);
  layout->addWidget(system_box);
  connect(system_prompt_, &QPlainTextEdit::textChanged, this, &ChatSettingsPanel::systemPromptChanged);

  auto* sampling_box = new QGroupBox(tr("Sampling"));
  auto* form = new QFormLayout(sampling_box);
  temperature_ = spin(0.0, 2.0, 0.05, 2, tr("0 picks the most likely token every time (greedy)"));
  temperature_->setObjectName(QStringLiteral("chatTemperature"));
  top_k_ = new QSpinBox;
  top_k_->setRange(0, 1000);
  top_k_->setSpecialValueText(tr("off"));
  top_k_->setToolTip(tr("keep the k most likely tokens; off = all"));
  top_k_->setMinimumWidth(70);
  top_p_ = spin(0.01, 1.0, 0.05, 2, tr("keep the most likely tokens whose probabilities add up to this; 1 = off"));
  min_p_ = spin(0.0, 1.0, 0.01, 2, tr("drop tokens below this fraction of the top token's probability; 0 = off"));
  repetition_penalty_ = spin(0.5, 2.0, 0.05, 2, tr("discourage tokens already in the conversation; 1 = off"));
  max_new_tokens_ = new QSpinBox;
  max_new_tokens_->setObjectName(QStringLiteral("chatMaxNewTokens"));
  max_new_tokens_->setRange(1, 32768);
  max_new_tokens_->setMinimumWidth(70);
  max_new_tokens_->setToolTip(tr("the longest reply, in tokens (a reply also ends when the context is full)"));
  seed_ = new QSpinBox;
  seed_->setObjectName(QStringLiteral("chatSeed"));
  seed_->setRange(0, std::numeric_limits<int>::max());
  seed_->setMinimumWidth(70);
  random_seed_ = new QCheckBox(tr("random"));
  random_seed_->setObjectName(QStringLiteral("chatRandomSeed"));
  random_seed_->setToolTip(tr("a fresh seed for every reply; untick to make replies reproducible"));
  connect(random_seed_, &QCheckBox::toggled, seed_, [this](bool random) { seed_->setEnabled(!random); });
  auto* seed_row = new QHBoxLayout;
  seed_row->addWidget(seed_, 1);
  seed_row->addWidget(random_seed_);
  form->addRow(tr("Temperature"), temperature_);
  form->addRow(tr("Top-k"), top_k_);
  form->addRow(tr("Top-p"), top_p_);
  form->addRow(tr("Min-p"), min_p_);
  form->addRow(tr("Repetition penalty"), repetition_penalty_);
  form->addRow(tr("Max reply tokens"), max_new_tokens_);
  form->addRow(tr("Seed"), seed_row);
  auto* defaults = new QPushButton(tr("Defaults"));
  connect(defaults, &QPushButton::clicked, this, &ChatSettingsPanel::resetToDefaults);
  form->addRow(QString(), defaults);
  layout->addWidget(sampling_box);
  layout->addStretch(1);
  resetToDefaults();
}

QString ChatSettingsPanel::systemPrompt() const { return system_prompt_->toPlainText(); }
void ChatSettingsPanel::setSystemPrompt(const QString& text) { system_prompt_->setPlainText(text); }

void ChatSettingsPanel::resetToDefaults() {
  temperature_->setValue(kTemperature);
  top_k_->setValue(0);
  top_p_->setValue(kTopP);
  min_p_->setValue(0.0);
  repetition_penalty_->setValue(kRepetitionPenalty);
  max_new_tokens_->setValue(kMaxNewTokens);
  seed_->setValue(0);
  random_seed_->setChecked(true);
  seed_->setEnabled(false);
}

GenerationConfig ChatSettingsPanel::generationConfig() const {
  GenerationConfig config;
  config.max_new_tokens = max_new_tokens_->value();
  config.sampler.temperature = float(temperature_->value());
  config.sampler.top_k = top_k_->value();
  config.sampler.top_p = float(top_p_->value());
  config.sampler.min_p = float(min_p_->value());
  config.sampler.repetition_penalty = float(repetition_penalty_->value());
  if (random_seed_->isChecked()) {
    static std::random_device device;
    config.sampler.seed = (uint64_t(device()) << 32) ^ device();
  } else {
    config.sampler.seed = uint64_t(seed_->value());
  }
  return config;
}

nlohmann::json ChatSettingsPanel::samplingJson() const {
  nlohmann::json j = {{"temperature", temperature_->value()},
                      {"top_k", top_k_->value()},
                      {"top_p", top_p_->value()},
                      {"min_p", min_p_->value()},
                      {"repetition_penalty", repetition_penalty_->value()},
                      {"max_new_tokens", max_new_tokens_->value()}};
  j["seed"] = random_seed_->isChecked() ? nlohmann::json(nullptr) : nlohmann::json(seed_->value());
  return j;
}

void ChatSettingsPanel::setSamplingJson(const nlohmann::json& sampling) {
  resetToDefaults();
  if (!sampling.is_object()) return;
  auto number = [&](const char* key, auto apply) {
    if (auto it = sampling.find(key); it != sampling.end() && it->is_number()) apply(it->get<double>());
  };
  number("temperature", [&](double v) { temperature_->setValue(v); });
  number("top_k", [&](double v) { top_k_->setValue(int(v)); });
  number("top_p", [&](double v) { top_p_->setValue(v); });
  number("min_p", [&](double v) { min_p_->setValue(v); });
  number("repetition_penalty", [&](double v) { repetition_penalty_->setValue(v); });
  number("max_new_tokens", [&](double v) { max_new_tokens_->setValue(int(v)); });
  number("seed", [&](double v) {
    random_seed_->setChecked(false);
    seed_->setValue(int(v));
  });
}

}  // namespace aqlm::studio
