#include "core/store/records.h"

#include <array>
#include <utility>

#include "core/common/error.h"

namespace aqlm::store {
namespace {

template <typename Enum, size_t N>
Enum parse(std::string_view text, const std::array<std::pair<Enum, const char*>, N>& names, const char* what) {
  for (const auto& [value, spelled] : names) {
    if (text == spelled) return value;
  }
  std::string choices;
  for (const auto& [value, spelled] : names) choices += str(choices.empty() ? "" : ", ", spelled);
  fail("unknown ", what, " '", text, "' (expected one of: ", choices, ")");
}

template <typename Enum, size_t N>
const char* spell(Enum value, const std::array<std::pair<Enum, const char*>, N>& names) {
  for (const auto& [candidate, spelled] : names) {
    if (candidate == value) return spelled;
  }
  return "?";
}

constexpr std::array<std::pair<QuantMethod, const char*>, 3> kMethods{{
    {QuantMethod::Aqlm, "aqlm"}, {QuantMethod::Gptq, "gptq"}, {QuantMethod::Rtn, "rtn"}}};
constexpr std::array<std::pair<RunStatus, const char*>, 6> kStatuses{{{RunStatus::Queued, "queued"},
                                                                      {RunStatus::Running, "running"},
                                                                      {RunStatus::Paused, "paused"},
                                                                      {RunStatus::Finished, "finished"},
                                                                      {RunStatus::Failed, "failed"},
                                                                      {RunStatus::Cancelled, "cancelled"}}};
constexpr std::array<std::pair<MessageRole, const char*>, 3> kRoles{
    {{MessageRole::System, "system"}, {MessageRole::User, "user"}, {MessageRole::Assistant, "assistant"}}};

}  // namespace

Timestamp now() { return std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now()); }

const char* name(QuantMethod method) { return spell(method, kMethods); }
const char* name(RunStatus status) { return spell(status, kStatuses); }
const char* name(MessageRole role) { return spell(role, kRoles); }
QuantMethod parse_quant_method(std::string_view text) { return parse(text, kMethods, "quantization method"); }
RunStatus parse_run_status(std::string_view text) { return parse(text, kStatuses, "run status"); }
MessageRole parse_message_role(std::string_view text) { return parse(text, kRoles, "message role"); }

bool is_over(RunStatus status) {
  return status == RunStatus::Finished || status == RunStatus::Failed || status == RunStatus::Cancelled;
}

}  // namespace aqlm::store
