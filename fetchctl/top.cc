#include "fetchctl/top.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fetchctl/exit_codes.h"
#include "fetchctl/interrupt.h"
#include "fetchctl/top_view.h"
#include "proto/fetchfleet.grpc.pb.h"

namespace fetchfleet::fetchctl {
namespace {

// A listing that takes longer than this is a coordinator in trouble: the view
// says so and tries again.
constexpr auto kCallTimeout = std::chrono::seconds(5);

// Cancellable: where the poller keeps the call in progress, so that quitting
// does not wait for its deadline. Thread-safe.
class Cancellable {
 public:
  void Set(grpc::ClientContext* context) {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = context;
    if (cancelled_ && context != nullptr) context->TryCancel();
  }
  void Cancel() {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    if (current_ != nullptr) current_->TryCancel();
  }

 private:
  std::mutex mu_;
  grpc::ClientContext* current_ = nullptr;  // guarded by mu_
  bool cancelled_ = false;                  // guarded by mu_
};

// Call makes one unary listing call with the deadline, cancellable.
template <typename Request, typename Response, typename Method>
grpc::Status Call(Method method, const Request& request, Response* response,
                  Cancellable* cancel) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  cancel->Set(&context);
  grpc::Status status = method(&context, request, response);
  cancel->Set(nullptr);
  return status;
}

// ReadSnapshot reads the four listings, stopping at the first failure.
grpc::Status ReadSnapshot(const std::shared_ptr<grpc::Channel>& channel,
                          Cancellable* cancel, TopSnapshot* snapshot) {
  auto admin = v1::AdminService::NewStub(channel);
  auto jobs = v1::JobService::NewStub(channel);
  using grpc::ClientContext;
  v1::ListWorkersResponse workers;
  grpc::Status status = Call(
      [&](ClientContext* c, const v1::ListWorkersRequest& r,
          v1::ListWorkersResponse* out) {
        return admin->ListWorkers(c, r, out);
      },
      v1::ListWorkersRequest(), &workers, cancel);
  if (!status.ok()) return status;
  status =
      Call([&](ClientContext* c, const v1::ListLimitsRequest& r,
               v1::LimitTable* out) { return admin->ListLimits(c, r, out); },
           v1::ListLimitsRequest(), &snapshot->limits, cancel);
  if (!status.ok()) return status;
  v1::ListBreakersResponse breakers;
  status = Call(
      [&](ClientContext* c, const v1::ListBreakersRequest& r,
          v1::ListBreakersResponse* out) {
        return admin->ListBreakers(c, r, out);
      },
      v1::ListBreakersRequest(), &breakers, cancel);
  if (!status.ok()) return status;
  v1::ListJobsResponse listed;
  status =
      Call([&](ClientContext* c, const v1::ListJobsRequest& r,
               v1::ListJobsResponse* out) { return jobs->ListJobs(c, r, out); },
           v1::ListJobsRequest(), &listed, cancel);
  if (!status.ok()) return status;
  snapshot->taken = absl::Now();
  snapshot->workers.assign(workers.workers().begin(), workers.workers().end());
  snapshot->breakers.assign(breakers.breakers().begin(),
                            breakers.breakers().end());
  snapshot->jobs.assign(listed.jobs().begin(), listed.jobs().end());
  return grpc::Status::OK;
}

// Refused: a failure that trying again will not fix (the caller's
// credentials or roles, a coordinator without these calls). Anything else
// (unreachable, too slow, an internal error) is shown and retried.
bool Refused(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNIMPLEMENTED:
      return true;
    default:
      return false;
  }
}

// WriteAll writes `text` whole to a blocking fd.
bool WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += n;
  }
  return true;
}

// Poller reads a snapshot every interval on its own thread and wakes the
// drawing thread through `wake_fd` (one byte 'p' per reading). Thread-safe.
class Poller {
 public:
  struct Reading {
    std::optional<TopSnapshot> snapshot;  // set when status is OK
    grpc::Status status;
    absl::Time at;
  };

  Poller(std::shared_ptr<grpc::Channel> channel, absl::Duration interval,
         int wake_fd)
      : channel_(std::move(channel)),
        interval_(interval),
        wake_fd_(wake_fd),
        thread_([this] { Run(); }) {}

  ~Poller() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    cancel_.Cancel();
    thread_.join();
  }

  // Take returns the readings since the last Take, oldest first.
  std::vector<Reading> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(readings_, {});
  }

 private:
  void Run() {
    while (true) {
      absl::Time start = absl::Now();
      Reading reading;
      TopSnapshot snapshot;
      reading.status = ReadSnapshot(channel_, &cancel_, &snapshot);
      reading.at = absl::Now();
      if (reading.status.ok()) reading.snapshot = std::move(snapshot);
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_) return;
      // The drawing thread takes them at once; two are all it ever needs
      // (the previous good one and this one), so the queue stays small.
      if (readings_.size() >= 4) readings_.erase(readings_.begin());
      readings_.push_back(std::move(reading));
      char byte = 'p';
      // A full pipe already holds a wake-up: nothing is lost.
      (void)!::write(wake_fd_, &byte, 1);
      cv_.wait_for(lock,
                   absl::ToChronoNanoseconds(std::max(
                       absl::ZeroDuration(), start + interval_ - absl::Now())),
                   [this] { return stop_; });
      if (stop_) return;
    }
  }

  const std::shared_ptr<grpc::Channel> channel_;
  const absl::Duration interval_;
  const int wake_fd_;
  Cancellable cancel_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;              // guarded by mu_
  std::vector<Reading> readings_;  // guarded by mu_
  std::thread thread_;             // last: it starts running at once
};

// The self-pipe SIGWINCH writes to ('w').
std::atomic<int> winch_fd{-1};

void OnWinch(int) {
  int saved = errno;
  int fd = winch_fd.load();
  char byte = 'w';
  if (fd >= 0) (void)!::write(fd, &byte, 1);
  errno = saved;
}

// Screen owns the terminal while the view runs: the alternate screen, the
// cursor hidden, and (when stdin is a terminal) raw input without echo. Its
// destructor puts everything back, on every way out of the view.
class Screen {
 public:
  Screen() {
    keys_ = ::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved_) == 0;
    if (keys_) {
      struct termios raw = saved_;
      // No line editing, echo or signal keys (Ctrl-C arrives as a byte);
      // output processing stays, so the rest of fetchctl writes as usual.
      raw.c_lflag &= ~(ICANON | ECHO | ISIG | IEXTEN);
      raw.c_iflag &= ~(IXON | ICRNL);
      raw.c_cc[VMIN] = 1;
      raw.c_cc[VTIME] = 0;
      ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    WriteAll(STDOUT_FILENO, "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J");
  }
  ~Screen() {
    WriteAll(STDOUT_FILENO, "\x1b[?25h\x1b[?1049l");
    if (keys_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;

  bool keys() const { return keys_; }

  // Size: the terminal's columns and rows (80x24 when it cannot tell).
  static std::pair<int, int> Size() {
    struct winsize ws {};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0 ||
        ws.ws_row == 0)
      return {80, 24};
    return {ws.ws_col, ws.ws_row};
  }

  // Draw overwrites the screen in place with `lines` (each at most the
  // width): home, each line over the old one, clear what is left of a short
  // line and below the last. One write, so no half-drawn frame shows.
  static bool Draw(const std::vector<std::string>& lines, int width,
                   int height) {
    std::string frame = "\x1b[H";
    for (size_t i = 0; i < lines.size(); ++i) {
      frame += lines[i];
      // A full-width line leaves the cursor in the last column, where a
      // clear would erase that column's character.
      if (static_cast<int>(lines[i].size()) < width) frame += "\x1b[K";
      if (i + 1 < lines.size()) frame += "\r\n";
    }
    if (static_cast<int>(lines.size()) < height) frame += "\r\n\x1b[J";
    return WriteAll(STDOUT_FILENO, frame);
  }

 private:
  bool keys_ = false;
  struct termios saved_ {};
};

int Live(const std::shared_ptr<grpc::Channel>& channel,
         const TopOptions& options) {
  int wake[2];
  if (::pipe2(wake, O_NONBLOCK | O_CLOEXEC) != 0) {
    std::fprintf(stderr, "error: pipe: %s\n", std::strerror(errno));
    return kExitSomeFailed;
  }
  std::atomic<int> signalled{0};
  winch_fd.store(wake[1]);
  struct sigaction winch {
  }, old_winch{};
  winch.sa_handler = OnWinch;
  winch.sa_flags = SA_RESTART;
  sigemptyset(&winch.sa_mask);
  ::sigaction(SIGWINCH, &winch, &old_winch);

  int code = kExitOk;
  std::string fatal;
  {
    // SIGINT and SIGTERM end the view the way `q` does (then exit 128+sig).
    InterruptScope interrupt([&signalled, fd = wake[1]](int sig) {
      signalled.store(sig);
      char byte = 's';
      (void)!::write(fd, &byte, 1);
    });
    Screen screen;
    Poller poller(channel, options.interval, wake[1]);
    std::optional<TopSnapshot> current, previous;
    TopFrame frame;
    frame.coordinator = options.coordinator;
    frame.keys = screen.keys();
    bool quit = false;
    while (!quit) {
      auto [width, height] = Screen::Size();
      frame.current = current ? &*current : nullptr;
      frame.previous = previous ? &*previous : nullptr;
      frame.now_unix_ms = absl::ToUnixMillis(absl::Now());
      if (!Screen::Draw(RenderTop(frame, width, height), width, height)) {
        fatal = absl::StrCat("writing to the terminal: ", std::strerror(errno));
        code = kExitSomeFailed;
        break;
      }
      struct pollfd fds[2] = {{wake[0], POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
      int n = ::poll(fds, screen.keys() ? 2 : 1, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        fatal = absl::StrCat("poll: ", std::strerror(errno));
        code = kExitSomeFailed;
        break;
      }
      if (screen.keys() && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
        char keys[64];
        ssize_t got = ::read(STDIN_FILENO, keys, sizeof(keys));
        if (got == 0) {
          quit = true;  // the terminal went away
        }
        for (ssize_t i = 0; i < got; ++i) {
          if (keys[i] == 'q' || keys[i] == 'Q' || keys[i] == 0x03) quit = true;
        }
      }
      if (fds[0].revents & POLLIN) {
        char bytes[64];
        while (::read(wake[0], bytes, sizeof(bytes)) > 0) {
        }
      }
      if (signalled.load() != 0) {
        code = 128 + signalled.load();
        quit = true;
      }
      for (Poller::Reading& reading : poller.Take()) {
        frame.clock =
            absl::FormatTime("%H:%M:%S", reading.at, absl::LocalTimeZone());
        if (reading.snapshot) {
          previous = std::move(current);
          current = std::move(reading.snapshot);
          frame.error.clear();
        } else if (Refused(reading.status)) {
          fatal = ErrorText(reading.status);
          code = ExitCodeFor(reading.status);
          quit = true;
        } else {
          std::string retrying = absl::StrCat(
              " (retrying every ", absl::FormatDuration(options.interval), ")");
          // What went wrong first: gRPC's own text is long and technical.
          frame.error =
              reading.status.error_code() == grpc::StatusCode::UNAVAILABLE
                  ? absl::StrCat("cannot reach the coordinator", retrying, ": ",
                                 reading.status.error_message())
                  : absl::StrCat(ErrorText(reading.status), retrying);
        }
      }
    }
    // The poller stops, then the screen is restored, before anything is
    // printed for the user.
  }
  ::sigaction(SIGWINCH, &old_winch, nullptr);
  winch_fd.store(-1);
  ::close(wake[0]);
  ::close(wake[1]);
  if (!fatal.empty()) std::fprintf(stderr, "error: %s\n", fatal.c_str());
  return code;
}

int Snapshot(const std::shared_ptr<grpc::Channel>& channel,
             const TopOptions& options) {
  Cancellable cancel;
  TopSnapshot first, second;
  grpc::Status status = ReadSnapshot(channel, &cancel, &first);
  if (!status.ok()) return ReportError(status);
  absl::SleepFor(options.interval);
  status = ReadSnapshot(channel, &cancel, &second);
  if (!status.ok()) return ReportError(status);
  TopFrame frame;
  frame.coordinator = options.coordinator;
  frame.current = &second;
  frame.previous = &first;
  frame.now_unix_ms = absl::ToUnixMillis(absl::Now());
  frame.clock =
      absl::FormatTime("%H:%M:%S", second.taken, absl::LocalTimeZone());
  for (const std::string& line : RenderTop(frame, 0, 0))
    std::printf("%s\n", line.c_str());
  return kExitOk;
}

}  // namespace

bool TopIsLive() { return ::isatty(STDOUT_FILENO); }

int TopCommand(const std::shared_ptr<grpc::Channel>& channel,
               const TopOptions& options) {
  return TopIsLive() ? Live(channel, options) : Snapshot(channel, options);
}

}  // namespace fetchfleet::fetchctl
