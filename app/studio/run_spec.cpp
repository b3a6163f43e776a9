#include "app/studio/run_spec.h"

#include <QCoreApplication>
#include <QFileInfo>

#include "core/common/error.h"
#include "core/quant/pipeline_output.h"

namespace aqlm::studio {

nlohmann::json RunSpec::to_json() const {
  return {{"pipeline", pipeline.to_json()}, {"device", device.toStdString()}, {"threads", threads}};
}

RunSpec RunSpec::from_json(const nlohmann::json& j) {
  AQLM_CHECK(j.is_object() && j.contains("pipeline"), "run settings: no \"pipeline\" object (not a run the studio started)");
  RunSpec spec;
  spec.pipeline = PipelineSettings::from_json(j.at("pipeline"));
  spec.device = QString::fromStdString(j.value("device", std::string("cpu")));
  spec.threads = j.value("threads", 0);
  return spec;
}

store::QuantMethod RunSpec::method() const {
  switch (pipeline.method) {
    case PipelineMethod::Aqlm: return store::QuantMethod::Aqlm;
    case PipelineMethod::Gptq: return store::QuantMethod::Gptq;
    case PipelineMethod::Rtn: return store::QuantMethod::Rtn;
  }
  return store::QuantMethod::Aqlm;
}

std::string RunSpec::config_name() const { return method_config_name(pipeline); }

QStringList quantize_arguments(const RunSpec& spec, const QString& log_json, const QString& database, store::Id run_id,
                               bool resume) {
  const PipelineSettings& s = spec.pipeline;
  auto q = [](const std::string& text) { return QString::fromStdString(text); };
  auto n = [](auto value) { return QString::number(value); };
  QStringList args{"quantize", q(s.model), "--out", q(s.out_dir), "--method", q(pipeline_method_name(s.method))};
  if (!s.tokenizer.empty()) args << "--tokenizer" << q(s.tokenizer);
  if (!s.checkpoint_dir.empty()) args << "--checkpoint" << q(s.checkpoint_dir);
  if (s.method == PipelineMethod::Aqlm) {
    args << "--config" << q(s.aqlm.name()) << "--beam" << n(s.beam) << "--layer-epochs" << n(s.layer_max_epochs)
         << "--layer-tolerance" << n(s.layer_tolerance) << "--layer-steps" << n(s.layer_adam_steps);
    if (s.finetune)
      args << "--finetune" << "--epochs" << n(s.finetune_epochs) << "--finetune-lr" << n(s.finetune_learning_rate)
           << "--finetune-batch" << n(s.finetune_batch);
    else
      args << "--no-finetune";
    if (s.global_finetune_epochs > 0)
      args << "--global-epochs" << n(s.global_finetune_epochs) << "--global-lr" << n(s.global_finetune_learning_rate)
           << "--global-batch" << n(s.global_finetune_batch);
  } else {
    args << "--bits" << n(s.bits) << "--group-size" << n(s.group_size);
  }
  for (const std::string& file : s.calibration_files) args << "--calib" << q(file);
  args << "--nsamples" << n(s.nsamples) << "--seqlen" << n(s.seqlen) << "--seed" << n(qulonglong(s.seed));
  if (s.heldout >= 0) args << "--heldout" << n(s.heldout);
  if (s.max_ram_gb > 0) args << "--max-ram" << n(s.max_ram_gb);
  if (!s.eval_text.empty()) {
    args << "--eval-text" << q(s.eval_text);
    if (s.eval_seqlen > 0) args << "--eval-seqlen" << n(s.eval_seqlen);
  }
  if (s.overwrite) args << "--overwrite";
  args << "--device" << (spec.device.startsWith("cuda") ? QStringLiteral("cuda") : QStringLiteral("cpu"));
  if (spec.threads > 0) args << "--threads" << n(spec.threads);
  args << "--log-json" << log_json << "--db=" + database << "--run-id" << n(qlonglong(run_id));
  if (resume) args << "--resume";
  return args;
}

std::filesystem::path run_log_dir(const std::filesystem::path& database_path, store::Id run_id) {
  return database_path.parent_path() / "runs" / std::to_string(run_id);
}

QString locate_cli() {
  const QString beside = QCoreApplication::applicationDirPath() + QStringLiteral("/aqlm-cli");
  if (QFileInfo(beside).isExecutable()) return beside;
  const QString from_env = qEnvironmentVariable("AQLM_CLI");
  if (!from_env.isEmpty() && QFileInfo(from_env).isExecutable()) return from_env;
  return {};
}

}  // namespace aqlm::studio
