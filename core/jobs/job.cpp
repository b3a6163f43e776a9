#include "core/jobs/job.h"

#include <exception>
#include <new>

#include "core/jobs/cancelled.h"

namespace aqlm {

Job::Job(PipelineSettings settings) : settings_(std::move(settings)) {}

PipelineResult Job::run() {
  const auto report = [this](EventKind kind, const std::string& message) {
    ProgressEvent e;
    e.kind = kind;
    e.message = message;
    e.data = {{"checkpoint", checkpoint_dir()}};
    try {
      sinks_.emit(e);
    } catch (const Error&) {
      // The run's own outcome matters more than a log that cannot take one more line.
    }
  };
  try {
    return run_pipeline(settings_, &sinks_, &cancel_);
  } catch (const Cancelled&) {
    report(EventKind::RunCancelled, "stopped; the checkpoint in " + checkpoint_dir() + " resumes it (--resume)");
    throw;
  } catch (const Error& e) {
    report(EventKind::RunFailed, e.what());
    throw;
  } catch (const std::bad_alloc&) {
    report(EventKind::RunFailed, "out of memory");
    throw;
  } catch (const std::exception& e) {
    report(EventKind::RunFailed, std::string("internal error: ") + e.what());
    throw;
  }
}

}  // namespace aqlm
