#include "common/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace fetchfleet {
namespace {

void CheckSyscall(bool ok, const char* what) {
  if (!ok) {
    // A failing epoll/eventfd call means the process cannot work at all: a
    // broken invariant.
    std::fprintf(stderr, "fatal: %s: %s\n", what, std::strerror(errno));
    std::abort();
  }
}

}  // namespace

EventLoop::EventLoop(const Clock* clock) : clock_(clock) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  CheckSyscall(epoll_fd_ >= 0, "epoll_create1");
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  CheckSyscall(wake_fd_ >= 0, "eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  CheckSyscall(::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) == 0,
               "epoll_ctl(wake)");
}

EventLoop::~EventLoop() {
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

void EventLoop::Post(Task task) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake = posted_.empty();
    posted_.push_back(std::move(task));
  }
  if (wake) {
    uint64_t one = 1;
    ssize_t unused = ::write(wake_fd_, &one, sizeof(one));
    (void)unused;
  }
}

void EventLoop::Stop() {
  Post([this] {
    std::lock_guard<std::mutex> lock(mu_);
    stop_requested_ = true;
  });
}

bool EventLoop::IsLoopThread() const {
  return std::this_thread::get_id() == loop_thread_;
}

void EventLoop::WatchFd(int fd, uint32_t events, FdCallback callback) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  bool existed = fds_.count(fd) > 0;
  fds_[fd] = std::make_shared<FdCallback>(std::move(callback));
  CheckSyscall(::epoll_ctl(epoll_fd_, existed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
                           fd, &ev) == 0,
               "epoll_ctl(watch)");
}

void EventLoop::UpdateFd(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  CheckSyscall(::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) == 0,
               "epoll_ctl(mod)");
}

void EventLoop::UnwatchFd(int fd) {
  if (fds_.erase(fd) == 0) return;
  // The fd may already be closed by its owner (curl closes before telling us);
  // EBADF is fine.
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::RunAfter(absl::Duration delay, Task task) {
  TimerId id = next_timer_id_++;
  absl::Time due = Now() + delay;
  timers_.emplace(std::make_pair(due, id), std::move(task));
  timer_due_[id] = due;
  return id;
}

void EventLoop::CancelTimer(TimerId id) {
  auto it = timer_due_.find(id);
  if (it == timer_due_.end()) return;
  timers_.erase({it->second, id});
  timer_due_.erase(it);
}

int EventLoop::NextTimeoutMs() const {
  if (timers_.empty()) return -1;
  absl::Duration wait = timers_.begin()->first.first - Now();
  if (wait <= absl::ZeroDuration()) return 0;
  // Round up so a timer never fires early and spins.
  return static_cast<int>(
      absl::ToInt64Milliseconds(wait + absl::Microseconds(999)));
}

void EventLoop::RunPosted() {
  std::deque<Task> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(posted_);
  }
  for (Task& task : batch) task();
}

void EventLoop::RunDueTimers() {
  absl::Time now = Now();
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto node = timers_.extract(timers_.begin());
    timer_due_.erase(node.key().second);
    node.mapped()();
  }
}

void EventLoop::Run() {
  loop_thread_ = std::this_thread::get_id();
  std::vector<epoll_event> events(256);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_requested_ && posted_.empty()) break;
    }
    int n = ::epoll_wait(epoll_fd_, events.data(),
                         static_cast<int>(events.size()), NextTimeoutMs());
    if (n < 0) {
      CheckSyscall(errno == EINTR, "epoll_wait");
      continue;
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        uint64_t count;
        while (::read(wake_fd_, &count, sizeof(count)) > 0) {
        }
        continue;
      }
      // Look the fd up each time: an earlier callback of this round may have
      // unwatched it.
      auto it = fds_.find(fd);
      if (it == fds_.end()) continue;
      std::shared_ptr<FdCallback> callback = it->second;
      (*callback)(events[i].events);
    }
    RunDueTimers();
    RunPosted();
  }
  loop_thread_ = std::thread::id();
}

}  // namespace fetchfleet
