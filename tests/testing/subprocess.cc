#include "tests/testing/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace fetchfleet::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string TempPath(const char* tag) {
  const char* dir = std::getenv("TMPDIR");
  std::string tmpl =
      absl::StrCat(dir && *dir ? dir : "/tmp", "/ff-", tag, "-XXXXXX");
  int fd = ::mkstemp(tmpl.data());
  ::close(fd);
  return tmpl;
}

}  // namespace

std::string BinaryPath(const std::string& name) {
  const char* dir = std::getenv("FETCHFLEET_BIN_DIR");
  if (dir != nullptr && *dir) return absl::StrCat(dir, "/", name);
  // Test executables live in build/bin beside the binaries they run.
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  std::string path(self, n > 0 ? n : 0);
  return absl::StrCat(path.substr(0, path.rfind('/')), "/", name);
}

std::string WriteTempFile(const std::string& content) {
  std::string path = TempPath("in");
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

Subprocess::Subprocess(std::vector<std::string> argv,
                       const std::string& stdin_path) {
  argv0_ = argv.empty() ? "" : argv[0];
  stdout_path_ = TempPath("out");
  stderr_path_ = TempPath("err");
  pid_ = ::fork();
  if (pid_ == 0) {
    ::setpgid(0, 0);
    int in =
        ::open(stdin_path.empty() ? "/dev/null" : stdin_path.c_str(), O_RDONLY);
    int out = ::open(stdout_path_.c_str(), O_WRONLY | O_TRUNC);
    int err = ::open(stderr_path_.c_str(), O_WRONLY | O_TRUNC);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::perror("execv");
    ::_exit(127);
  }
}

Subprocess::~Subprocess() {
  if (Running()) {
    Signal(SIGKILL);
    Wait();
  }
  // Kept for the suite's check that no secret reaches a log
  // (tests/integration/no_secrets_in_logs.sh). stdout is left out: it is the
  // results, the submitter's own data.
  if (const char* dir = std::getenv("FETCHFLEET_TEST_LOG_DIR");
      dir != nullptr && *dir != '\0') {
    std::string name = argv0_.substr(argv0_.rfind('/') + 1);
    std::ofstream(
        absl::StrCat(dir, "/", name, ".", ::getpid(), ".", pid_, ".log"))
        << Stderr();
  }
  ::unlink(stdout_path_.c_str());
  ::unlink(stderr_path_.c_str());
}

bool Subprocess::Running() {
  if (exit_code_ >= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return false;
}

void Subprocess::Signal(int sig) {
  if (exit_code_ < 0) ::kill(pid_, sig);
}

int Subprocess::Wait(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (Running()) {
    if (absl::Now() > deadline) {
      Signal(SIGKILL);
      deadline = absl::InfiniteFuture();
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return exit_code_;
}

std::string Subprocess::Stdout() const { return ReadFile(stdout_path_); }
std::string Subprocess::Stderr() const { return ReadFile(stderr_path_); }

absl::StatusOr<std::string> Subprocess::WaitForOutput(const std::string& needle,
                                                      absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    for (const std::string& text : {Stderr(), Stdout()}) {
      size_t at = text.find(needle);
      if (at != std::string::npos) {
        size_t start = at + needle.size();
        size_t end = text.find('\n', start);
        if (end != std::string::npos) return text.substr(start, end - start);
      }
    }
    if (!Running()) {
      return absl::FailedPreconditionError(
          absl::StrCat("process exited (", exit_code_, ") before printing \"",
                       needle, "\"; stderr:\n", Stderr()));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "no \"", needle, "\" within the timeout; stderr:\n", Stderr()));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

absl::StatusOr<int> Subprocess::WaitForPort(absl::Duration timeout) {
  absl::StatusOr<std::string> rest = WaitForOutput("listening on ", timeout);
  if (!rest.ok()) return rest.status();
  // In a JSON log line the message's closing quote ends the address.
  std::string address = rest->substr(0, rest->find('"'));
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port)) {
    return absl::InternalError(
        absl::StrCat("cannot read a port in \"", *rest, "\""));
  }
  return port;
}

CommandResult RunCommand(std::vector<std::string> argv,
                         const std::string& stdin_path,
                         absl::Duration timeout) {
  Subprocess process(std::move(argv), stdin_path);
  CommandResult result;
  result.exit_code = process.Wait(timeout);
  result.out = process.Stdout();
  result.err = process.Stderr();
  return result;
}

}  // namespace fetchfleet::testing
