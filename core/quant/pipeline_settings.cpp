// PipelineSettings: checks, JSON (the studio's job file and the checkpoint's identity).
#include <cmath>
#include <filesystem>

#include "core/common/error.h"
#include "core/quant/pipeline.h"

namespace aqlm {
namespace fs = std::filesystem;
using json = nlohmann::json;

const char* pipeline_method_name(PipelineMethod m) {
  switch (m) {
    case PipelineMethod::Aqlm: return "aqlm";
    case PipelineMethod::Gptq: return "gptq";
    case PipelineMethod::Rtn: return "rtn";
  }
  return "?";
}

PipelineMethod parse_pipeline_method(const std::string& name) {
  for (PipelineMethod m : {PipelineMethod::Aqlm, PipelineMethod::Gptq, PipelineMethod::Rtn})
    if (name == pipeline_method_name(m)) return m;
  fail("unknown quantization method '", name, "' (choose aqlm, gptq or rtn)");
}

int64_t PipelineSettings::heldout_windows() const {
  if (heldout >= 0) return heldout;
  const bool tunes = method == PipelineMethod::Aqlm && (finetune || global_finetune_epochs > 0);
  return tunes ? std::max<int64_t>(1, (nsamples + 7) / 8) : 0;
}

std::vector<std::string> PipelineSettings::resolved_calibration_files() const {
  if (!calibration_files.empty()) return calibration_files;
  return {default_calibration_text_path().string()};
}

CalibrationOptions PipelineSettings::calibration_options() const {
  CalibrationOptions co;
  co.train_windows = nsamples;
  co.heldout_windows = heldout_windows();
  co.seqlen = seqlen;
  co.seed = seed;
  return co;
}

std::string PipelineSettings::resolved_checkpoint_dir() const {
  if (!checkpoint_dir.empty()) return checkpoint_dir;
  fs::path out = fs::path(out_dir).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();
  return out.string() + ".checkpoint";
}

void PipelineSettings::validate() const {
  AQLM_CHECK(!model.empty(), "quantize: no model given");
  AQLM_CHECK(!out_dir.empty(), "quantize: no output folder given (--out DIR)");
  AQLM_CHECK(nsamples >= 1, "quantize: --nsamples ", nsamples, " must be at least 1");
  AQLM_CHECK(heldout >= -1, "quantize: --heldout ", heldout, " must not be negative");
  AQLM_CHECK(seqlen >= 2, "quantize: --seqlen ", seqlen, " must be at least 2");
  AQLM_CHECK(eval_seqlen >= 0 && eval_seqlen != 1, "quantize: --eval-seqlen ", eval_seqlen, " must be at least 2");
  AQLM_CHECK(std::isfinite(max_ram_gb) && max_ram_gb >= 0, "quantize: --max-ram ", max_ram_gb,
             " GB must not be negative");
  if (device == ComputeDevice::Cuda) require_cuda_quantization("quantize: --device cuda");
  if (method == PipelineMethod::Aqlm) {
    AQLM_CHECK(aqlm.num_codebooks >= 1 && aqlm.num_codebooks <= 8 && aqlm.nbits >= 4 && aqlm.nbits <= 16 &&
                   (aqlm.group_size == 4 || aqlm.group_size == 8 || aqlm.group_size == 16),
               "quantize: --config ", aqlm.name(), " is not supported (1-8 codebooks of 4-16 bits, groups of 4, 8 or 16)");
    AQLM_CHECK(beam >= 0 && beam <= 64, "quantize: --beam ", beam, " is out of range 0..64");
    AQLM_CHECK(layer_max_epochs >= 0 && layer_adam_steps >= 0, "quantize: layer epochs and Adam steps must not be negative");
    AQLM_CHECK(layer_tolerance >= 0, "quantize: layer tolerance ", layer_tolerance, " is negative");
    AQLM_CHECK(std::isfinite(layer_learning_rate) && layer_learning_rate > 0, "quantize: layer learning rate ",
               layer_learning_rate, " must be positive");
    if (finetune) {
      AQLM_CHECK(finetune_epochs >= 1, "quantize: --epochs ", finetune_epochs, " must be at least 1");
      AQLM_CHECK(std::isfinite(finetune_learning_rate) && finetune_learning_rate > 0,
                 "quantize: fine-tuning learning rate ", finetune_learning_rate, " must be positive");
      AQLM_CHECK(finetune_batch >= 1, "quantize: fine-tuning batch of ", finetune_batch, " windows");
      AQLM_CHECK(finetune_patience >= 1, "quantize: fine-tuning patience ", finetune_patience, " must be at least 1");
    }
    AQLM_CHECK(global_finetune_epochs >= 0, "quantize: --global-epochs ", global_finetune_epochs, " must not be negative");
    if (global_finetune_epochs > 0) {
      AQLM_CHECK(std::isfinite(global_finetune_learning_rate) && global_finetune_learning_rate > 0,
                 "quantize: global fine-tuning learning rate ", global_finetune_learning_rate, " must be positive");
      AQLM_CHECK(global_finetune_batch >= 1, "quantize: global fine-tuning batch of ", global_finetune_batch, " windows");
    }
  } else {
    AQLM_CHECK(global_finetune_epochs == 0, "quantize: global fine-tuning (--global-epochs) needs --method aqlm");
    AQLM_CHECK(bits >= 2 && bits <= 8, "quantize: --bits ", bits, " for ", pipeline_method_name(method),
               "; 2 to 8 are supported");
    AQLM_CHECK(group_size >= 0, "quantize: --group-size ", group_size, " must not be negative");
  }
}

json PipelineSettings::to_json() const {
  return json{{"model", model},
              {"tokenizer", tokenizer},
              {"out_dir", out_dir},
              {"checkpoint_dir", checkpoint_dir},
              {"overwrite", overwrite},
              {"resume", resume},
              {"keep_checkpoint", keep_checkpoint},
              {"method", pipeline_method_name(method)},
              {"config", aqlm.name()},
              {"beam", beam},
              {"layer_max_epochs", layer_max_epochs},
              {"layer_tolerance", layer_tolerance},
              {"layer_adam_steps", layer_adam_steps},
              {"layer_learning_rate", layer_learning_rate},
              {"bits", bits},
              {"group_size", group_size},
              {"calibration_files", calibration_files},
              {"nsamples", nsamples},
              {"heldout", heldout},
              {"seqlen", seqlen},
              {"seed", seed},
              {"finetune", finetune},
              {"finetune_epochs", finetune_epochs},
              {"finetune_learning_rate", finetune_learning_rate},
              {"finetune_batch", finetune_batch},
              {"finetune_patience", finetune_patience},
              {"global_finetune_epochs", global_finetune_epochs},
              {"global_finetune_learning_rate", global_finetune_learning_rate},
              {"global_finetune_batch", global_finetune_batch},
              {"device", compute_device_name(device)},
              {"max_ram_gb", max_ram_gb},
              {"eval_text", eval_text},
              {"eval_seqlen", eval_seqlen}};
}

PipelineSettings PipelineSettings::from_json(const json& j) {
  AQLM_CHECK(j.is_object(), "job settings: expected a JSON object");
  PipelineSettings s;
  const auto get = [&](const char* key, auto& field) {
    if (!j.contains(key)) return;
    try {
      j.at(key).get_to(field);
    } catch (const json::exception&) {
      fail("job settings: field '", key, "' has the wrong type (", j.at(key).dump(), ")");
    }
  };
  get("model", s.model);
  get("tokenizer", s.tokenizer);
  get("out_dir", s.out_dir);
  get("checkpoint_dir", s.checkpoint_dir);
  get("overwrite", s.overwrite);
  get("resume", s.resume);
  get("keep_checkpoint", s.keep_checkpoint);
  std::string method = pipeline_method_name(s.method), config = s.aqlm.name();
  get("method", method);
  get("config", config);
  s.method = parse_pipeline_method(method);
  s.aqlm = AqlmConfig::parse(config);
  get("beam", s.beam);
  get("layer_max_epochs", s.layer_max_epochs);
  get("layer_tolerance", s.layer_tolerance);
  get("layer_adam_steps", s.layer_adam_steps);
  get("layer_learning_rate", s.layer_learning_rate);
  get("bits", s.bits);
  get("group_size", s.group_size);
  get("calibration_files", s.calibration_files);
  get("nsamples", s.nsamples);
  get("heldout", s.heldout);
  get("seqlen", s.seqlen);
  get("seed", s.seed);
  get("finetune", s.finetune);
  get("finetune_epochs", s.finetune_epochs);
  get("finetune_learning_rate", s.finetune_learning_rate);
  get("finetune_batch", s.finetune_batch);
  get("finetune_patience", s.finetune_patience);
  get("global_finetune_epochs", s.global_finetune_epochs);
  get("global_finetune_learning_rate", s.global_finetune_learning_rate);
  get("global_finetune_batch", s.global_finetune_batch);
  std::string device = compute_device_name(s.device);
  get("device", device);
  s.device = parse_compute_device(device);
  get("max_ram_gb", s.max_ram_gb);
  get("eval_text", s.eval_text);
  get("eval_seqlen", s.eval_seqlen);
  return s;
}

json PipelineSettings::result_settings() const {
  json j{{"model", fs::weakly_canonical(model).string()},
         {"method", pipeline_method_name(method)},
         {"calibration_files", calibration_files},
         {"nsamples", nsamples},
         {"heldout", heldout_windows()},
         {"seqlen", seqlen},
         {"seed", seed}};
  if (!tokenizer.empty()) j["tokenizer"] = fs::weakly_canonical(tokenizer).string();
  if (device != ComputeDevice::Cpu) j["device"] = compute_device_name(device);  // GPU rounding differs
  if (method == PipelineMethod::Aqlm) {
    j["config"] = aqlm.name();
    j["beam"] = beam;
    j["layer_max_epochs"] = layer_max_epochs;
    j["layer_tolerance"] = layer_tolerance;
    j["layer_adam_steps"] = layer_adam_steps;
    j["layer_learning_rate"] = layer_learning_rate;
    j["finetune"] = finetune;
    if (finetune) {
      j["finetune_epochs"] = finetune_epochs;
      j["finetune_learning_rate"] = finetune_learning_rate;
      j["finetune_batch"] = finetune_batch;
      j["finetune_patience"] = finetune_patience;
    }
    if (global_finetune_epochs > 0) {  // absent when off: older checkpoints keep resuming
      j["global_finetune_epochs"] = global_finetune_epochs;
      j["global_finetune_learning_rate"] = global_finetune_learning_rate;
      j["global_finetune_batch"] = global_finetune_batch;
    }
  } else {
    j["bits"] = bits;
    j["group_size"] = group_size;
  }
  return j;
}

}  // namespace aqlm
