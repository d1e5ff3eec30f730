// `fetchctl top` in a real terminal (tmux) against a real coordinator, worker
// and HTTP target: it shows the worker, the rate key with its limit and the
// running job, redraws as the job progresses and when the terminal is
// resized, keeps going while the coordinator is gone, and on `q` exits 0 with
// the terminal as it found it. Without a terminal it prints one snapshot.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/fleet.h"
#include "tests/integration/tmux.h"
#include "tests/testing/http_test_server.h"

namespace fetchfleet::testing {
namespace {

constexpr int kJobSize = 200;
constexpr char kRateKey[] = "top-key";

template <typename F>
bool WaitFor(F condition, absl::Duration timeout = absl::Seconds(20)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return condition();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// StartSlowJob submits kJobSize requests for one key limited to 5/s, so the
// job runs for longer than the test (detached: the coordinator holds it).
std::string StartSlowJob(const Fleet& fleet, const HttpTestServer& upstream) {
  std::string input;
  for (int i = 0; i < kJobSize; ++i)
    absl::StrAppend(&input, "{\"id\": \"r", i, "\", \"url\": \"",
                    upstream.Url("/json/a"), "\", \"rate_key\": \"", kRateKey,
                    "\"}\n");
  CommandResult submitted = RunCommand(
      fleet.Fetchctl({"submit", "--detach", "--no-progress", "--rate",
                      absl::StrCat(kRateKey, "=5/s"), WriteTempFile(input)}));
  EXPECT_EQ(submitted.exit_code, 0) << submitted.err;
  return std::string(absl::StripAsciiWhitespace(submitted.out));
}

// Done: the job's done count on the screen (-1 when its row is not there).
int Done(const std::vector<std::string>& rows, const std::string& job_id) {
  for (const std::string& row : rows) {
    if (!absl::StartsWith(row, job_id)) continue;
    std::string suffix = absl::StrCat("/", kJobSize);
    size_t slash = row.find(suffix);
    if (slash == std::string::npos) return -1;
    size_t start = row.rfind(' ', slash) + 1;
    int done = -1;
    if (!absl::SimpleAtoi(row.substr(start, slash - start), &done)) return -1;
    return done;
  }
  return -1;
}

bool Has(const std::vector<std::string>& rows, const std::string& text) {
  for (const std::string& row : rows)
    if (absl::StrContains(row, text)) return true;
  return false;
}

std::string Show(const std::vector<std::string>& rows) {
  return absl::StrCat("screen:\n", absl::StrJoin(rows, "\n"));
}

TEST(TopTest, LiveInATerminalRefreshesFitsQuitsAndRestoresTheTerminal) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  std::string job_id = StartSlowJob(fleet, upstream);
  ASSERT_FALSE(job_id.empty());

  // The shell notes the terminal's settings before and after, then keeps the
  // pane open so that the screen fetchctl leaves behind can be read.
  TmuxSession tmux;
  const std::string dir = tmux.dir();
  std::string top;
  for (const std::string& arg : fleet.Fetchctl({"top", "--interval", "300ms"}))
    absl::StrAppend(&top, ShellQuote(arg), " ");
  CommandResult started =
      tmux.Start(absl::StrCat("stty -g > ", dir, "/stty.before; ", top, "2> ",
                              dir, "/top.err; echo $? > ", dir,
                              "/rc.tmp; stty -g > ", dir, "/stty.after; mv ",
                              dir, "/rc.tmp ", dir, "/rc; exec sleep 600"),
                 120, 40);
  ASSERT_EQ(started.exit_code, 0) << started.err;

  // The worker, the key with its limit, the job with its progress.
  std::vector<std::string> rows;
  ASSERT_TRUE(WaitFor([&] {
    rows = tmux.Capture();
    return Has(rows, "w-1 ") && Has(rows, kRateKey) && Has(rows, "5/s") &&
           Done(rows, job_id) >= 0 && !Has(rows, "(rates from");
  })) << Show(rows)
      << ReadFile(dir + "/top.err");
  EXPECT_EQ(tmux.Format("#{alternate_on} #{cursor_flag}"), "1 0");
  EXPECT_TRUE(Has(rows, "WORKERS (1)")) << Show(rows);
  EXPECT_TRUE(Has(rows, "RUNNING JOBS (1)")) << Show(rows);
  EXPECT_TRUE(Has(rows, "q: quit")) << Show(rows);
  EXPECT_LE(rows.size(), 40u);
  for (const std::string& row : rows) EXPECT_LE(row.size(), 120u) << row;
  // The title is laid out to the terminal's width.
  EXPECT_EQ(rows[0].size(), 120u) << rows[0];

  // It refreshes in place: the job's progress moves on screen.
  int first = Done(rows, job_id);
  ASSERT_TRUE(WaitFor([&] {
    rows = tmux.Capture();
    return Done(rows, job_id) > first;
  })) << Show(rows);
  EXPECT_LT(Done(rows, job_id), kJobSize);

  // A resize (SIGWINCH) redraws at the new size.
  tmux.Resize(70, 20);
  ASSERT_TRUE(WaitFor([&] {
    rows = tmux.Capture();
    return !rows.empty() && rows[0].size() == 70u;
  })) << Show(rows);
  EXPECT_LE(rows.size(), 20u);
  for (const std::string& row : rows) EXPECT_LE(row.size(), 70u) << row;

  // The coordinator goes away: an error line, and it keeps trying.
  fleet.coordinator()->Signal(SIGKILL);
  ASSERT_TRUE(WaitFor([&] {
    rows = tmux.Capture();
    return rows.size() > 1 && absl::StartsWith(rows[1], "error: ");
  })) << Show(rows);
  EXPECT_TRUE(Has(rows, "retrying")) << Show(rows);
  EXPECT_FALSE(std::filesystem::exists(dir + "/rc"));

  // q quits: exit 0, and the terminal is as it was.
  tmux.SendKeys("q");
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(dir + "/rc"); }))
      << Show(tmux.Capture());
  EXPECT_EQ(ReadFile(dir + "/rc"), "0\n") << ReadFile(dir + "/top.err");
  EXPECT_EQ(ReadFile(dir + "/top.err"), "");
  EXPECT_EQ(tmux.Format("#{alternate_on} #{cursor_flag}"), "0 1");
  EXPECT_FALSE(ReadFile(dir + "/stty.before").empty());
  EXPECT_EQ(ReadFile(dir + "/stty.after"), ReadFile(dir + "/stty.before"));
  EXPECT_FALSE(Has(tmux.Capture(), "WORKERS")) << Show(tmux.Capture());
}

TEST(TopTest, CtrlCQuitsAsQDoes) {
  Fleet fleet;
  fleet.AddWorker("w-1");
  TmuxSession tmux;
  const std::string dir = tmux.dir();
  std::string top;
  for (const std::string& arg : fleet.Fetchctl({"top"}))
    absl::StrAppend(&top, ShellQuote(arg), " ");
  ASSERT_EQ(tmux.Start(absl::StrCat(top, "2> ", dir, "/top.err; echo $? > ",
                                    dir, "/rc.tmp; mv ", dir, "/rc.tmp ", dir,
                                    "/rc; exec sleep 600"),
                       100, 30)
                .exit_code,
            0);
  std::vector<std::string> rows;
  ASSERT_TRUE(WaitFor([&] {
    rows = tmux.Capture();
    return Has(rows, "w-1 ");
  })) << Show(rows);
  tmux.SendKeys("C-c");
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(dir + "/rc"); }))
      << Show(tmux.Capture());
  EXPECT_EQ(ReadFile(dir + "/rc"), "0\n") << ReadFile(dir + "/top.err");
  EXPECT_EQ(tmux.Format("#{alternate_on} #{cursor_flag}"), "0 1");
}

TEST(TopTest, SigtermRestoresTheTerminalToo) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  TmuxSession tmux;
  const std::string dir = tmux.dir();
  std::string top;
  for (const std::string& arg : fleet.Fetchctl({"top"}))
    absl::StrAppend(&top, ShellQuote(arg), " ");
  CommandResult started =
      tmux.Start(absl::StrCat("stty -g > ", dir, "/stty.before; ", top,
                              "< /dev/tty 2> ", dir, "/top.err & echo $! > ",
                              dir, "/pid; wait $!; echo $? > ", dir,
                              "/rc.tmp; stty -g > ", dir, "/stty.after; mv ",
                              dir, "/rc.tmp ", dir, "/rc; exec sleep 600"),
                 100, 30);
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::vector<std::string> rows;
  ASSERT_TRUE(WaitFor([&] {
    rows = tmux.Capture();
    return Has(rows, "w-1 ");
  })) << Show(rows);
  int pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      absl::StripAsciiWhitespace(ReadFile(dir + "/pid")), &pid));
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(dir + "/rc"); }))
      << Show(tmux.Capture());
  EXPECT_EQ(ReadFile(dir + "/rc"), absl::StrCat(128 + SIGTERM, "\n"));
  EXPECT_EQ(tmux.Format("#{alternate_on} #{cursor_flag}"), "0 1");
  EXPECT_EQ(ReadFile(dir + "/stty.after"), ReadFile(dir + "/stty.before"));
}

TEST(TopTest, WithoutATerminalItPrintsOneSnapshot) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  // Three results that are not ok: the worker's ERRORS.
  std::string failing;
  for (int i = 0; i < 3; ++i)
    absl::StrAppend(&failing, upstream.Url("/status/404"), "\n");
  CommandResult failed =
      RunCommand(fleet.Fetchctl({"submit", "--no-progress", "--max-attempts",
                                 "1", WriteTempFile(failing)}));
  ASSERT_EQ(failed.exit_code, 1) << failed.err;
  std::string job_id = StartSlowJob(fleet, upstream);
  ASSERT_FALSE(job_id.empty());
  // Wait until the key has been busy for a moment, so it has an achieved rate.
  absl::SleepFor(absl::Seconds(1));
  CommandResult snapshot =
      RunCommand(fleet.Fetchctl({"top", "--interval", "500ms"}));
  EXPECT_EQ(snapshot.exit_code, 0) << snapshot.err;
  EXPECT_EQ(snapshot.err, "");
  std::vector<std::string> rows = absl::StrSplit(snapshot.out, '\n');
  EXPECT_TRUE(absl::StartsWith(rows[0], "fetchctl top - " + fleet.address()))
      << snapshot.out;
  EXPECT_TRUE(Has(rows, "WORKERS (1)")) << snapshot.out;
  for (const std::string& row : rows) {
    if (!absl::StartsWith(row, "w-1 ")) continue;
    // NAME IN-FLIGHT REQ/S DONE ERRORS STATE
    std::vector<std::string> cells =
        absl::StrSplit(row, ' ', absl::SkipEmpty());
    ASSERT_GE(cells.size(), 6u) << row;
    EXPECT_NE(cells[2], "-") << row;  // a rate, from two readings
    EXPECT_EQ(cells[4], "3") << row;
    EXPECT_EQ(cells[5], "ok") << row;
  }
  EXPECT_TRUE(Has(rows, "w-1 ")) << snapshot.out;
  EXPECT_TRUE(Has(rows, "RATE KEYS (1)")) << snapshot.out;
  EXPECT_TRUE(Has(rows, "5/s")) << snapshot.out;
  EXPECT_TRUE(Has(rows, "BREAKERS NOT CLOSED (0): all closed")) << snapshot.out;
  EXPECT_TRUE(Has(rows, "RUNNING JOBS (1)")) << snapshot.out;
  int done = Done(rows, job_id);
  EXPECT_GT(done, 0) << snapshot.out;
  EXPECT_LT(done, kJobSize) << snapshot.out;
  // Plain text: no escape sequence, no key help; the rates were measured.
  EXPECT_EQ(snapshot.out.find('\x1b'), std::string::npos);
  EXPECT_FALSE(Has(rows, "q: quit"));
  EXPECT_FALSE(Has(rows, "(rates from")) << snapshot.out;

  // A coordinator that is gone: the same error and exit as every command.
  fleet.coordinator()->Signal(SIGKILL);
  fleet.coordinator()->Wait();
  CommandResult gone = RunCommand(fleet.Fetchctl({"top"}));
  EXPECT_EQ(gone.exit_code, 3) << gone.err;
  EXPECT_NE(gone.err.find("error: cannot reach the coordinator"),
            std::string::npos)
      << gone.err;
  EXPECT_EQ(gone.out, "");
}

TEST(TopTest, BadFlagsAreUsageErrors) {
  Fleet fleet;
  CommandResult fast = RunCommand(fleet.Fetchctl({"top", "--interval", "1ms"}));
  EXPECT_EQ(fast.exit_code, 2);
  EXPECT_NE(fast.err.find("error: --interval must be from 100ms to 1m"),
            std::string::npos)
      << fast.err;
  CommandResult extra = RunCommand(fleet.Fetchctl({"top", "extra"}));
  EXPECT_EQ(extra.exit_code, 2);
  EXPECT_NE(extra.err.find("usage: fetchctl top"), std::string::npos)
      << extra.err;
}

}  // namespace
}  // namespace fetchfleet::testing
