// TmuxSession: a real terminal for integration tests. One detached tmux
// session on a private server (its socket in a temporary directory, no
// configuration file read), so a test never touches a user's tmux. The test
// types into it (SendKeys) and reads the screen back (Capture).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/testing/subprocess.h"

namespace fetchfleet::testing {

class TmuxSession {
 public:
  TmuxSession() {
    std::string tmpl =
        std::filesystem::temp_directory_path() / "ff-tmux-XXXXXX";
    dir_ = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
    socket_ = dir_ + "/socket";
  }

  // Start runs `shell_command` (by sh) in a new width x height pane.
  CommandResult Start(const std::string& shell_command, int width, int height) {
    return Tmux({"new-session", "-d", "-s", "t", "-x", std::to_string(width),
                 "-y", std::to_string(height), shell_command});
  }

  ~TmuxSession() {
    Tmux({"kill-server"});
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  TmuxSession(const TmuxSession&) = delete;
  TmuxSession& operator=(const TmuxSession&) = delete;

  // dir: a private directory for the test's files (removed at the end).
  const std::string& dir() const { return dir_; }

  // Capture: the visible screen, one string per row (trailing blanks cut).
  std::vector<std::string> Capture() {
    CommandResult r = Tmux({"capture-pane", "-p", "-t", "t"});
    std::vector<std::string> rows = absl::StrSplit(r.out, '\n');
    while (!rows.empty() && rows.back().empty()) rows.pop_back();
    return rows;
  }
  std::string CaptureText() { return absl::StrJoin(Capture(), "\n"); }

  // Format: a tmux format of the pane, e.g. "#{alternate_on}".
  std::string Format(const std::string& format) {
    CommandResult r = Tmux({"display-message", "-p", "-t", "t", format});
    return std::string(absl::StripSuffix(r.out, "\n"));
  }

  void SendKeys(const std::string& keys) {
    Tmux({"send-keys", "-t", "t", keys});
  }

  void Resize(int width, int height) {
    Tmux({"resize-window", "-t", "t", "-x", std::to_string(width), "-y",
          std::to_string(height)});
  }

  CommandResult Tmux(std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/tmux", "-f", "/dev/null", "-S",
                                     socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, "", absl::Seconds(20));
  }

 private:
  std::string dir_;
  std::string socket_;
};

}  // namespace fetchfleet::testing
