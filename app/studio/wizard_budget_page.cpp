#include <QButtonGroup>
#include <QGridLayout>
#include <QLabel>
#include <QLineEdit>
#include <QRadioButton>
#include <QVBoxLayout>

#include <cmath>

#include "app/studio/system_monitor.h"
#include "app/studio/wizard_pages.h"

namespace aqlm::studio {

namespace {

// "best earlier: perplexity 21.78 at 2.05 bits (AQLM 2x8g8, run 3)" from the database, on the
// dataset this model was last evaluated on.
QString nearby_quality(StudioContext& context, const WizardChoice& choice, double bits) {
  if (!choice.model_id) return QObject::tr("no earlier runs");
  const std::vector<store::Evaluation> evaluations = context.database().evaluations_of_model(*choice.model_id);
  if (evaluations.empty()) return QObject::tr("no evaluated runs yet");
  const store::Evaluation& latest = evaluations.back();
  const auto best = context.database().best_near_budget(*choice.model_id, latest.dataset, latest.seqlen, bits, 0.35);
  if (!best || !best->run_id) return QObject::tr("no run within ±0.35 bits yet");
  return QObject::tr("best within ±0.35 bits: perplexity %1 on %2 (%3 %4 at %5 bits, run %6)")
      .arg(best->perplexity, 0, 'f', 2)
      .arg(QString::fromStdString(latest.dataset), QString(store::name(*best->method)).toUpper(),
           QString::fromStdString(best->config))
      .arg(best->bits.value_or(0), 0, 'f', 2)
      .arg(*best->run_id);
}

}  // namespace

BudgetPage::BudgetPage(CompressWizard& wizard) : wizard_(wizard) {
  setObjectName(QStringLiteral("budgetPage"));
  setTitle(tr("2. Bit budget"));
  setSubTitle(tr("Bits per parameter over the quantized linear layers, computed from this model's shapes "
                 "(codes + fp16 codebooks + fp16 scales)."));
  group_ = new QButtonGroup(this);
  auto* grid = new QGridLayout;
  for (int i = 0; i < int(preset_targets().size()); ++i) {
    auto* radio = new QRadioButton;
    radio->setObjectName(QStringLiteral("preset%1").arg(i));
    group_->addButton(radio, i);
    presets_ << radio;
    grid->addWidget(radio, i, 0);
  }
  custom_radio_ = new QRadioButton(tr("Custom MxBgG:"));
  custom_radio_->setObjectName(QStringLiteral("presetCustom"));
  group_->addButton(custom_radio_, -2);
  custom_ = new QLineEdit;
  custom_->setObjectName(QStringLiteral("customConfig"));
  custom_->setPlaceholderText(tr("e.g. 2x8g8: 2 codebooks of 2^8 codewords over groups of 8 weights"));
  custom_status_ = new QLabel;
  custom_status_->setObjectName(QStringLiteral("customStatus"));
  custom_status_->setWordWrap(true);
  grid->addWidget(custom_radio_, int(preset_targets().size()), 0);
  grid->addWidget(custom_, int(preset_targets().size()) + 1, 0);
  grid->addWidget(custom_status_, int(preset_targets().size()) + 2, 0);
  connect(custom_, &QLineEdit::textChanged, this, [this] {
    custom_radio_->setChecked(true);
    updateCustom();
  });
  connect(group_, &QButtonGroup::idToggled, this, [this](int, bool) { Q_EMIT completeChanged(); });
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(grid);
  layout->addStretch();
}

namespace {
// A preset whose nearest configuration is further than this from its target is labelled
// "nearest reachable": a quarter bit is about the spacing of neighbouring configurations
// (a codebook bit more or less) on a large model, where presets are always this close.
constexpr double kReachableBits = 0.25;
}  // namespace

void BudgetPage::initializePage() {
  const WizardChoice& choice = wizard_.choice();
  const ModelConfig& config = choice.model->config;
  preset_choices_.clear();
  const double fp_bits = 16.0;
  for (int i = 0; i < presets_.size(); ++i) {
    const double target = preset_targets()[size_t(i)];
    const std::optional<BudgetChoice> nearest = nearest_aqlm_config(config, target);
    preset_choices_ << nearest;
    if (!nearest) {
      presets_[i]->setText(tr("~%1 bits: no group size of 4, 8 or 16 divides this model's layers").arg(target));
      presets_[i]->setEnabled(false);
      continue;
    }
    presets_[i]->setEnabled(true);
    // On small models the codebooks (and fp16 scales) cost a large share of the bits, so a low
    // target may be out of reach: say so, and how far the nearest configuration is.
    const double off = nearest->bits_per_parameter - target;
    const QString reach = std::abs(off) > kReachableBits
                              ? tr("nearest reachable, %1%2 bits from the target: ").arg(off > 0 ? "+" : "−").arg(std::abs(off), 0, 'f', 2)
                              : QString();
    presets_[i]->setText(tr("~%1 bits  →  %2AQLM %3: %4 bits per parameter, %5 of weights (%6× smaller than fp16)\n      %7")
                             .arg(target)
                             .arg(reach)
                             .arg(QString::fromStdString(nearest->settings.aqlm.name()))
                             .arg(nearest->bits_per_parameter, 0, 'f', 3)
                             .arg(format_bytes(double(nearest->weight_bytes)))
                             .arg(fp_bits / nearest->bits_per_parameter, 0, 'f', 1)
                             .arg(nearby_quality(wizard_.context(), choice, nearest->bits_per_parameter)));
  }
  if (!group_->checkedButton()) {
    const int two_bits = 2;
    if (presets_[two_bits]->isEnabled()) presets_[two_bits]->setChecked(true);
  }
  updateCustom();
}

void BudgetPage::choose(int index, const QString& custom) {
  if (index >= 0) {
    presets_[index]->setChecked(true);
  } else {
    custom_->setText(custom);
    custom_radio_->setChecked(true);
  }
  Q_EMIT completeChanged();
}

void BudgetPage::updateCustom() {
  custom_valid_ = false;
  const QString text = custom_->text().trimmed();
  if (text.isEmpty() || !wizard_.choice().model) {
    custom_status_->clear();
    Q_EMIT completeChanged();
    return;
  }
  try {
    PipelineSettings settings;
    settings.aqlm = AqlmConfig::parse(text.toStdString());
    settings.model = wizard_.choice().model->info.path.string();  // validate() wants both; only
    settings.out_dir = "out";                                      // the method's ranges matter here
    settings.validate();
    const BudgetChoice choice = evaluate_budget(wizard_.choice().model->config, settings);
    custom_status_->setText(tr("%1: %2 bits per parameter, %3 of weights; %4")
                                .arg(text)
                                .arg(choice.bits_per_parameter, 0, 'f', 3)
                                .arg(format_bytes(double(choice.weight_bytes)),
                                     nearby_quality(wizard_.context(), wizard_.choice(), choice.bits_per_parameter)));
    custom_status_->setStyleSheet(QString());
    custom_valid_ = true;
  } catch (const Error& error) {
    custom_status_->setText(QString::fromStdString(error.what()));
    custom_status_->setStyleSheet(QStringLiteral("color:#a00"));
  }
  Q_EMIT completeChanged();
}

std::optional<AqlmConfig> BudgetPage::current() const {
  const int id = group_->checkedId();
  if (id >= 0 && id < preset_choices_.size() && preset_choices_[id]) return preset_choices_[id]->settings.aqlm;
  if (id == -2 && custom_valid_) return AqlmConfig::parse(custom_->text().trimmed().toStdString());
  return std::nullopt;
}

bool BudgetPage::isComplete() const { return current().has_value(); }

bool BudgetPage::validatePage() {
  const auto config = current();
  if (!config) return false;
  wizard_.choice().aqlm = *config;
  return true;
}

}  // namespace aqlm::studio
