// Subprocess: runs one of our binaries for an integration test, stdout and
// stderr going to files the test can read while it runs. Tests find ports by
// waiting for the server's "listening on HOST:PORT" line (servers bind port 0).
// Not thread-safe.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fetchfleet::testing {

// BinaryPath returns build/bin/NAME (tests run from the build tree;
// FETCHFLEET_BIN_DIR overrides).
std::string BinaryPath(const std::string& name);

class Subprocess {
 public:
  // Start runs argv (argv[0] a path), stdin from `stdin_path` ("" = /dev/null).
  explicit Subprocess(std::vector<std::string> argv,
                      const std::string& stdin_path = "");
  ~Subprocess();  // SIGKILLs a process still running

  pid_t pid() const { return pid_; }
  // WaitForOutput waits until stderr or stdout holds `needle`; returns the text
  // after it up to the end of that line.
  absl::StatusOr<std::string> WaitForOutput(
      const std::string& needle, absl::Duration timeout = absl::Seconds(20));
  // WaitForPort waits for "listening on HOST:PORT" and returns PORT.
  absl::StatusOr<int> WaitForPort(absl::Duration timeout = absl::Seconds(20));
  void Signal(int sig);
  // Wait waits for exit (SIGKILL after `timeout`); returns the exit code, or
  // 128+signal.
  int Wait(absl::Duration timeout = absl::Seconds(60));
  bool Running();
  std::string Stdout() const;
  std::string Stderr() const;

 private:
  std::string argv0_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string stdout_path_;
  std::string stderr_path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// RunCommand runs argv to completion (killed after `timeout`).
CommandResult RunCommand(std::vector<std::string> argv,
                         const std::string& stdin_path = "",
                         absl::Duration timeout = absl::Seconds(120));

// WriteTempFile writes `content` to a new file and returns its path.
std::string WriteTempFile(const std::string& content);

}  // namespace fetchfleet::testing
