#pragma once
// A job stopped because someone asked it to (Ctrl-C, the studio's Stop button), not because
// something went wrong: the CLI exits with 130 and says how to resume; the studio shows the
// run as paused. Thrown by the pipeline at the step boundary after the cancel flag is set.
#include "core/common/error.h"

namespace aqlm {

class Cancelled : public Error {
 public:
  using Error::Error;
};

}  // namespace aqlm
