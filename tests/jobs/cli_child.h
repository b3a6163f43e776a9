#pragma once
// aqlm-cli as a child process, the way the studio runs it: stdout and stderr in files, an
// optional file-size limit, and the exit status (128 + signal when killed by one).
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#ifndef AQLM_CLI_PATH
#error "tests/jobs/CMakeLists.txt defines AQLM_CLI_PATH"
#endif

namespace aqlm::test {

struct Child {
  pid_t pid = -1;
  std::filesystem::path out, err;
};

// Starts aqlm-cli ARGS with stdout/stderr in files; `file_limit` > 0 sets RLIMIT_FSIZE.
inline Child spawn(const std::vector<std::string>& args, const std::filesystem::path& dir, const std::string& name, rlim_t file_limit = 0) {
  Child c;
  c.out = dir / (name + ".stdout");
  c.err = dir / (name + ".stderr");
  std::vector<std::string> argv_s = {AQLM_CLI_PATH};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string out = c.out.string(), err = c.err.string();
  c.pid = ::fork();
  if (c.pid == 0) {  // only async-signal-safe calls until exec
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    if (file_limit > 0) {
      ::signal(SIGXFSZ, SIG_IGN);  // writes past the limit fail with EFBIG instead of killing
      const rlimit limit{file_limit, file_limit};
      ::setrlimit(RLIMIT_FSIZE, &limit);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return c;
}

inline int wait_exit(const Child& c) {
  int status = 0;
  ::waitpid(c.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace aqlm::test
