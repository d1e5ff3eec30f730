// Durable jobs (README, "Durable jobs"): a coordinator with --data-dir is
// SIGKILLed and restarted under a running job, real processes throughout, and
// the client still ends with exactly one result per input line, seqs 1..N,
// exit 0, with no manual step.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/redis_server.h"  // FreeLoopbackPort
#include "tests/testing/subprocess.h"

namespace fetchfleet::testing {
namespace {

std::string TempDir() {
  char pattern[] = "/tmp/fetchfleet-durable-XXXXXX";
  const char* dir = ::mkdtemp(pattern);
  return dir != nullptr ? dir : "";
}

// Lines: how many input lines a big test uses (smaller under a sanitizer,
// where everything runs several times slower).
size_t Lines(const char* env, size_t normal) {
  const char* value = std::getenv(env);
  size_t n = 0;
  if (value != nullptr && absl::SimpleAtoi(value, &n) && n > 0) return n;
  return normal;
}

// DurableCoordinator: one coordinator on a fixed port and data directory,
// killed and started again as the test likes.
class DurableCoordinator {
 public:
  explicit DurableCoordinator(std::vector<std::string> flags = {},
                              std::string data_dir = TempDir())
      : port_(FreeLoopbackPort()),
        data_dir_(std::move(data_dir)),
        flags_(std::move(flags)) {
    Start();
  }
  ~DurableCoordinator() {
    if (::testing::Test::HasFailure()) {
      std::string all = logs_ + (process_ ? process_->Stderr() : "");
      std::cerr << "--- coordinator stderr (all runs, tail):\n"
                << (all.size() > 6000 ? all.substr(all.size() - 6000) : all);
    }
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  const std::string& data_dir() const { return data_dir_; }
  Subprocess* process() { return process_.get(); }

  void Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {BinaryPath("fetchfleet-coordinator"),
                                     "--listen",
                                     address(),
                                     "--data-dir",
                                     data_dir_,
                                     "--heartbeat-interval",
                                     "200ms"};
    argv.insert(argv.end(), flags_.begin(), flags_.end());
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_ = std::make_unique<Subprocess>(argv);
    auto port = process_->WaitForPort(absl::Seconds(60));
    ASSERT_TRUE(port.ok()) << port.status() << "\n" << process_->Stderr();
    ++starts_;
  }
  void Kill() {
    process_->Signal(SIGKILL);
    process_->Wait();
    logs_ += process_->Stderr();
    process_.reset();
  }
  void Restart(std::vector<std::string> extra = {}) {
    Kill();
    Start(std::move(extra));
  }
  // Every run's stderr so far.
  std::string Logs() const {
    return logs_ + (process_ ? process_->Stderr() : "");
  }

 private:
  const int port_;
  const std::string data_dir_;
  const std::vector<std::string> flags_;
  std::unique_ptr<Subprocess> process_;
  std::string logs_;
  int starts_ = 0;
};

std::unique_ptr<Subprocess> StartWorker(const std::string& address,
                                        const std::string& name) {
  return std::make_unique<Subprocess>(std::vector<std::string>{
      BinaryPath("fetchfleet-worker"), "--coordinator", address, "--name", name,
      "--allow-cidr", "127.0.0.0/8"});
}

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// CheckExactlyOnce reads a results file of `n` requests whose ids are 1..n
// (the line numbers fetchctl gives URL lines): each id once, seqs 1..n in
// order. A light scan, not a JSON parse: the big tests have a million lines.
void CheckExactlyOnce(const std::string& path, size_t n) {
  std::ifstream in(path);
  std::vector<bool> seen(n + 1, false);
  std::string line;
  size_t count = 0;
  size_t duplicates = 0;
  size_t out_of_order = 0;
  size_t failed = 0;
  while (std::getline(in, line)) {
    ++count;
    uint64_t seq = 0;
    uint64_t id = 0;
    size_t s = line.find("\"seq\": ");
    size_t i = line.find("\"id\": \"");
    if (s == std::string::npos || i == std::string::npos ||
        !absl::SimpleAtoi(line.substr(s + 7, line.find(',', s) - s - 7),
                          &seq) ||
        !absl::SimpleAtoi(line.substr(i + 7, line.find('"', i + 7) - i - 7),
                          &id) ||
        id == 0 || id > n) {
      ADD_FAILURE() << "not a result of this job: " << line;
      return;
    }
    if (seq != count) ++out_of_order;
    if (seen[id]) ++duplicates;
    seen[id] = true;
    if (line.find("\"ok\": true") == std::string::npos) ++failed;
  }
  EXPECT_EQ(count, n);
  EXPECT_EQ(duplicates, 0u);
  EXPECT_EQ(out_of_order, 0u) << "seqs are not 1.." << count;
  EXPECT_EQ(failed, 0u);
}

// The test: a 100,000-line job, its coordinator SIGKILLed and
// restarted at least five times, twice while the input is still being
// uploaded (the client's stdin is a pipe the test feeds slowly) and three
// times while results are being delivered.
TEST(Durable, SigkillsDuringUploadAndDeliveryLoseNothing) {
  // A client that dies leaves the test writing into a pipe with no reader:
  // that must fail the test, not kill it.
  ::signal(SIGPIPE, SIG_IGN);
  HttpTestServer target;
  DurableCoordinator coordinator;
  auto worker_a = StartWorker(coordinator.address(), "w-a");
  auto worker_b = StartWorker(coordinator.address(), "w-b");
  const size_t n = Lines("FETCHFLEET_TEST_DURABLE_LINES", 100000);

  std::string dir = TempDir();
  std::string fifo = dir + "/input";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string out = dir + "/results.jsonl";
  Subprocess client(
      {BinaryPath("fetchctl"), "submit", "--coordinator", coordinator.address(),
       "--no-progress", "--output", out, "--reconnect-for", "3m"},
      fifo);
  int kills_while_running = 0;
  {
    // Opening the pipe waits for fetchctl to open its end.
    std::ofstream input(fifo);
    ASSERT_TRUE(input.good());
    const size_t chunks = 10;
    for (size_t c = 0; c < chunks; ++c) {
      std::string text;
      for (size_t i = c * n / chunks; i < (c + 1) * n / chunks; ++i)
        absl::StrAppend(&text, target.Url(absl::StrCat("/d/", i + 1)), "\n");
      input << text << std::flush;
      ASSERT_TRUE(input.good()) << "fetchctl stopped reading:\n"
                                << client.Stderr();
      if (c == 2 || c == 6) {
        // The client resumes a job it knows: one whose id it was told (the
        // id comes once the job is in the store).
        ASSERT_TRUE(client.WaitForOutput("job j-").ok()) << client.Stderr();
        absl::SleepFor(absl::Milliseconds(300));
        ASSERT_TRUE(client.Running()) << client.Stderr();
        coordinator.Restart();
        ++kills_while_running;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  }  // end of input
  // Kills during delivery, at a quarter, half and three quarters of the
  // results (their lines are about the same length).
  for (double part : {0.25, 0.5, 0.75}) {
    absl::Time deadline = absl::Now() + absl::Minutes(3);
    uint64_t line_bytes = 0;
    while (absl::Now() < deadline && client.Running()) {
      if (line_bytes == 0) {
        std::ifstream first(out);
        std::string line;
        if (std::getline(first, line)) line_bytes = line.size() + 1;
      }
      if (line_bytes > 0 && FileSize(out) / line_bytes >= part * n) break;
      absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_TRUE(client.Running())
        << "the job ended before " << part * 100 << "% of it\n"
        << client.Stderr();
    coordinator.Restart();
    ++kills_while_running;
  }
  EXPECT_EQ(client.Wait(absl::Minutes(5)), 0) << client.Stderr();
  EXPECT_GE(kills_while_running, 5);
  CheckExactlyOnce(out, n);
  // The upload kills found the input open: the client resumed it.
  EXPECT_NE(coordinator.Logs().find("input open"), std::string::npos);
  EXPECT_NE(coordinator.Logs().find("resumed its input"), std::string::npos);
  EXPECT_NE(client.Stderr().find("reconnecting"), std::string::npos);
}

// A detached job runs with no client: its coordinator restarted twice, then
// `watch --from 1` gets every result.
TEST(Durable, DetachedJobSurvivesRestartsUntilWatched) {
  HttpTestServer target;
  DurableCoordinator coordinator;
  auto worker = StartWorker(coordinator.address(), "w-a");
  const size_t n = Lines("FETCHFLEET_TEST_DETACHED_LINES", 1000000);
  std::string dir = TempDir();
  std::string urls = dir + "/urls.txt";
  {
    std::ofstream file(urls);
    for (size_t i = 0; i < n; ++i) file << target.Url("/d/") << i + 1 << "\n";
  }
  absl::Time upload = absl::Now();
  CommandResult submit =
      RunCommand({BinaryPath("fetchctl"), "submit", "--coordinator",
                  coordinator.address(), "--detach", urls},
                 "", absl::Minutes(5));
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  std::string job_id = submit.out.substr(0, submit.out.find('\n'));
  ASSERT_EQ(job_id.rfind("j-", 0), 0u) << submit.out;
  std::cerr << n << " lines accepted detached in "
            << absl::FormatDuration(absl::Now() - upload) << "\n";
  absl::SleepFor(absl::Seconds(1));
  coordinator.Restart();
  absl::SleepFor(absl::Seconds(2));
  coordinator.Restart();
  std::string out = dir + "/results.jsonl";
  CommandResult watch = RunCommand(
      {BinaryPath("fetchctl"), "watch", "--coordinator", coordinator.address(),
       job_id, "--from", "1", "--no-progress", "--output", out},
      "", absl::Minutes(15));
  EXPECT_EQ(watch.exit_code, 0) << watch.err;
  CheckExactlyOnce(out, n);
}

// A store that cannot write (here: full, at --store-max-mb) stops the job
// with a clear error instead of losing anything; started again with room,
// the job completes with every result and the client never noticed more
// than a reconnect.
TEST(Durable, FullStoreIsAClearErrorAndLosesNothing) {
  HttpTestServer target;
  DurableCoordinator coordinator({}, TempDir());
  coordinator.Restart({"--store-max-mb", "1"});
  auto worker = StartWorker(coordinator.address(), "w-a");
  const size_t n = 20000;
  std::string dir = TempDir();
  std::string urls = dir + "/urls.txt";
  {
    std::ofstream file(urls);
    std::string padding(200, 'x');
    for (size_t i = 0; i < n; ++i)
      file << target.Url("/d/") << i + 1 << "?" << padding << "\n";
  }
  std::string out = dir + "/results.jsonl";
  Subprocess client({BinaryPath("fetchctl"), "submit", "--coordinator",
                     coordinator.address(), "--no-progress", "--output", out,
                     urls});
  auto full = coordinator.process()->WaitForOutput("database or disk is full",
                                                   absl::Seconds(60));
  ASSERT_TRUE(full.ok()) << full.status();
  // New jobs are refused, saying why.
  std::string one = WriteTempFile(target.Url("/one") + "\n");
  CommandResult refused =
      RunCommand({BinaryPath("fetchctl"), "submit", "--coordinator",
                  coordinator.address(), "--no-progress", one});
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("job store cannot write"), std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("database or disk is full"), std::string::npos)
      << refused.err;
  CommandResult jobs = RunCommand(
      {BinaryPath("fetchctl"), "jobs", "--coordinator", coordinator.address()});
  EXPECT_NE(jobs.out.find("database or disk is full"), std::string::npos)
      << jobs.out << jobs.err;
  EXPECT_TRUE(client.Running());
  // Room again: the same data directory, no cap.
  coordinator.Restart();
  EXPECT_EQ(client.Wait(absl::Minutes(3)), 0) << client.Stderr();
  CheckExactlyOnce(out, n);
}

// A client that dies mid-upload does not leave its job open for ever: after
// --input-resume-timeout the input ends with the lines it has, and the job
// completes.
TEST(Durable, AnInputNobodyResumesEndsAfterTheTimeout) {
  HttpTestServer target;
  DurableCoordinator coordinator({"--input-resume-timeout", "2s"});
  auto worker = StartWorker(coordinator.address(), "w-a");
  std::string dir = TempDir();
  std::string fifo = dir + "/input";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Subprocess client({BinaryPath("fetchctl"), "submit", "--coordinator",
                     coordinator.address(), "--no-progress"},
                    fifo);
  std::ofstream input(fifo);
  for (int i = 0; i < 100; ++i)
    input << target.Url(absl::StrCat("/d/", i + 1)) << "\n";
  input.flush();
  auto id = client.WaitForOutput("job ");
  ASSERT_TRUE(id.ok()) << id.status();
  // The lines are durable once results flow.
  auto first = client.WaitForOutput("\"seq\": 100,");
  ASSERT_TRUE(first.ok()) << first.status() << client.Stderr();
  client.Signal(SIGKILL);
  client.Wait();
  std::string job_id = *id;
  auto ended = coordinator.process()->WaitForOutput(
      "no client resumed its input", absl::Seconds(30));
  ASSERT_TRUE(ended.ok()) << ended.status();
  CommandResult watch =
      RunCommand({BinaryPath("fetchctl"), "watch", "--coordinator",
                  coordinator.address(), job_id, "--no-progress"});
  EXPECT_EQ(watch.exit_code, 0) << watch.err;
  std::string path = WriteTempFile(watch.out);
  CheckExactlyOnce(path, 100);
}

// Cancelling a job whose input waits in the store: the cancel is confirmed,
// and survives a SIGKILL; every line, spooled ones included, gets its
// `cancelled` result (as the spool makes room), and the job ends only then.
TEST(Durable, ACancelledSpooledJobAnswersEveryLineAcrossARestart) {
  HttpTestServer target;
  DurableCoordinator coordinator;  // no worker: nothing is fetched
  const size_t n = 10000;
  std::string dir = TempDir();
  std::string urls = dir + "/urls.txt";
  {
    std::ofstream file(urls);
    for (size_t i = 0; i < n; ++i) file << target.Url("/d/") << i + 1 << "\n";
  }
  CommandResult submit = RunCommand(
      {BinaryPath("fetchctl"), "submit", "--coordinator", coordinator.address(),
       "--detach", "--spool-results", "1000", urls});
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  std::string job_id = submit.out.substr(0, submit.out.find('\n'));
  CommandResult cancel =
      RunCommand({BinaryPath("fetchctl"), "cancel", "--coordinator",
                  coordinator.address(), job_id});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  coordinator.Restart();
  std::string out = dir + "/results.jsonl";
  CommandResult watch = RunCommand({BinaryPath("fetchctl"), "watch",
                                    "--coordinator", coordinator.address(),
                                    job_id, "--no-progress", "--output", out});
  EXPECT_EQ(watch.exit_code, 1) << watch.err;  // every request failed
  EXPECT_NE(watch.err.find("[cancelled]"), std::string::npos) << watch.err;
  std::ifstream in(out);
  std::string line;
  size_t count = 0, cancelled = 0;
  while (std::getline(in, line)) {
    ++count;
    if (line.find("\"error\": \"cancelled\"") != std::string::npos) ++cancelled;
  }
  EXPECT_EQ(count, n);
  EXPECT_EQ(cancelled, n);
}

// Lines that make no request (blank, comments) are input too: a long run of
// them is made durable and acknowledged like any other, not left to stall the
// upload.
TEST(Durable, ALongRunOfBlankLinesDoesNotStallTheInput) {
  HttpTestServer target;
  DurableCoordinator coordinator;
  auto worker = StartWorker(coordinator.address(), "w-a");
  std::string text;
  for (int i = 0; i < 40000; ++i) text += i % 2 == 0 ? "# comment\n" : "\n";
  for (int i = 1; i <= 3; ++i)
    absl::StrAppend(&text, target.Url(absl::StrCat("/d/", i)), "\n");
  std::string urls = WriteTempFile(text);
  CommandResult submit =
      RunCommand({BinaryPath("fetchctl"), "submit", "--coordinator",
                  coordinator.address(), "--no-progress", urls},
                 "", absl::Seconds(60));
  EXPECT_EQ(submit.exit_code, 0) << submit.err;
  // Their ids are their line numbers, after the 40,000 others.
  for (int id = 40001; id <= 40003; ++id) {
    EXPECT_NE(submit.out.find(absl::StrCat("\"id\": \"", id, "\"")),
              std::string::npos)
        << submit.out;
  }
  EXPECT_EQ(std::count(submit.out.begin(), submit.out.end(), '\n'), 3);
}

// A store that is not a database stops the coordinator at start with the
// reason; it is never overwritten.
TEST(Durable, ADamagedStoreRefusesToStart) {
  std::string dir = TempDir();
  {
    std::ofstream file(dir + "/jobs.sqlite");
    file << std::string(8192, 'z');
  }
  CommandResult run = RunCommand({BinaryPath("fetchfleet-coordinator"),
                                  "--listen", "127.0.0.1:0", "--data-dir", dir},
                                 "", absl::Seconds(30));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.err.find("file is not a database"), std::string::npos)
      << run.err;
  EXPECT_EQ(FileSize(dir + "/jobs.sqlite"), 8192u);
}

}  // namespace
}  // namespace fetchfleet::testing
