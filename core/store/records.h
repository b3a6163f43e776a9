#pragma once
// The rows of the run database as plain C++ values: what goes in (…Info, RunRequest)
// and what comes out (the same plus id and times). No SQL leaves core/store.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace aqlm::store {

using Id = std::int64_t;
// Wall-clock time at millisecond resolution, stored as Unix epoch milliseconds (UTC).
using Timestamp = std::chrono::sys_time<std::chrono::milliseconds>;
Timestamp now();

enum class QuantMethod { Aqlm, Gptq, Rtn };
enum class RunStatus { Queued, Running, Paused, Finished, Failed, Cancelled };
enum class MessageRole { System, User, Assistant };

// Lower-case names as stored and as typed on the CLI ("aqlm", "running", "assistant").
const char* name(QuantMethod method);
const char* name(RunStatus status);
const char* name(MessageRole role);
// Throw Error listing the valid names when `text` is none of them.
QuantMethod parse_quant_method(std::string_view text);
RunStatus parse_run_status(std::string_view text);
MessageRole parse_message_role(std::string_view text);
// finished, failed and cancelled: the run is over (failed/cancelled may still be resumed).
bool is_over(RunStatus status);

// ---------------------------------------------------------------- models
struct ModelInfo {
  std::string name;                // shown in the library
  std::filesystem::path path;      // file or folder; unique in the library
  std::string format;              // gguf, safetensors, hf-aqlm, llama2c
  std::string architecture;        // llama, mistral, qwen2
  std::int64_t parameters = 0;
  std::string dtype;               // Q4_1, bfloat16, ...
  std::int64_t size_bytes = 0;     // on disk
};

struct Model : ModelInfo {
  Id id = 0;
  Timestamp added;
};

struct ModelSummary : Model {
  std::int64_t run_count = 0;
  std::int64_t finished_run_count = 0;
};

// ---------------------------------------------------------------- runs
struct RunRequest {
  Id model_id = 0;
  QuantMethod method = QuantMethod::Aqlm;
  std::string config;                              // 2x8g8, w3g128, ...
  nlohmann::json settings = nlohmann::json::object();
  std::filesystem::path output_dir;
  std::filesystem::path checkpoint_dir;
  std::optional<double> bits_predicted;            // bits per parameter of the whole model
};

struct Run : RunRequest {
  Id id = 0;
  RunStatus status = RunStatus::Queued;
  std::string error_message;                       // set while status is Failed
  Timestamp created;
  std::optional<Timestamp> started;                // first time it ran
  std::optional<Timestamp> finished;               // when it finished, failed or was cancelled
  std::optional<double> bits_measured;
  std::optional<std::int64_t> output_bytes;
};

struct RunOutput {
  double bits_measured = 0;
  std::int64_t output_bytes = 0;
};

// ---------------------------------------------------------------- metrics
struct LayerMetric {
  int block = 0;
  std::string layer;             // self_attn.q_proj, ...
  std::string config;
  double loss = 0;               // NaN allowed (stored as NULL)
  double relative_error = 0;     // as the quantizer reports it (NaN allowed)
  double seconds = 0;
  double bits = 0;               // bits per parameter of this layer
};

struct StepLoss {
  int block = 0;
  std::string layer;             // "" for a whole-block phase such as finetune
  std::int64_t step = 0;
  std::string phase;             // adam, beam, finetune, ...
  double loss = 0;               // NaN allowed (stored as NULL)
};

struct LayerRef {
  int block = 0;
  std::string layer;
};

struct EvalResult {
  std::string dataset;           // wikitext2, c4, ...
  int seqlen = 0;
  int windows = 0;
  double perplexity = 0;
  double nll = 0;                // mean negative log-likelihood per token, nats
  std::int64_t tokens = 0;
  double seconds = 0;
};

struct Evaluation : EvalResult {
  Id id = 0;
  Id model_id = 0;               // for a run: the model it compressed
  std::optional<Id> run_id;      // nullopt: the model file itself
  Timestamp created;
};

struct RunSummary : Run {
  std::int64_t layers_done = 0;
  std::optional<double> mean_relative_error;  // over layers with a number
  double layer_seconds = 0;                   // sum over layers
  std::vector<Evaluation> latest_evaluations; // the newest per (dataset, seqlen)
};

// One point of the compare plot: the newest evaluation of a run (or of the model file
// itself, which has no method and no bits: the studio draws it as a reference line).
struct ComparePoint {
  Id evaluation_id = 0;
  std::optional<Id> run_id;
  std::optional<QuantMethod> method;
  std::string config;
  std::optional<double> bits;    // measured, else predicted bits per parameter
  double perplexity = 0;
};

struct ArtifactInfo {
  std::string kind;              // hf-aqlm, checkpoint, log, ...
  std::filesystem::path path;
  std::int64_t bytes = 0;
  std::string sha256;            // 64 lower-case hex digits
};

struct Artifact : ArtifactInfo {
  Id id = 0;
  Id run_id = 0;
  Timestamp created;
};

// ---------------------------------------------------------------- chat
struct ConversationInfo {
  std::string title;
  std::optional<Id> model_id;    // chatting with a model file, or
  std::optional<Id> run_id;      // with a run's output (at most one of the two)
  std::string system_prompt;
  nlohmann::json sampling = nlohmann::json::object();  // temperature, top_p, ...
};

struct Conversation : ConversationInfo {
  Id id = 0;
  Timestamp created;
};

struct ConversationSummary : Conversation {
  std::int64_t message_count = 0;
  Timestamp last_activity;       // newest message, else creation
};

struct MessageInfo {
  MessageRole role = MessageRole::User;
  std::string content;
  std::int64_t tokens = 0;
  std::optional<double> tokens_per_second;       // assistant messages
  std::optional<double> time_to_first_token_s;   // assistant messages
};

struct Message : MessageInfo {
  Id id = 0;
  Id conversation_id = 0;
  Timestamp created;
};

struct ConversationWithMessages {
  Conversation conversation;
  std::vector<Message> messages;  // oldest first
};

}  // namespace aqlm::store
