#include "common/event_loop.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace fetchfleet {
namespace {

TEST(EventLoopTest, PostedTasksRunOnLoopThreadInOrder) {
  EventLoop loop;
  std::vector<int> seen;
  std::thread poster([&] {
    for (int i = 0; i < 100; ++i) {
      loop.Post([&, i] {
        EXPECT_TRUE(loop.IsLoopThread());
        seen.push_back(i);
      });
    }
    loop.Stop();
  });
  loop.Run();
  poster.join();
  ASSERT_EQ(seen.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[i], i);
}

TEST(EventLoopTest, TimersFireInDueOrderAndCancelWorks) {
  EventLoop loop;
  std::vector<int> order;
  loop.Post([&] {
    loop.RunAfter(absl::Milliseconds(20), [&] { order.push_back(2); });
    EventLoop::TimerId cancelled =
        loop.RunAfter(absl::Milliseconds(5), [&] { order.push_back(99); });
    loop.RunAfter(absl::Milliseconds(1), [&] { order.push_back(1); });
    loop.RunAfter(absl::Milliseconds(30), [&] { loop.Stop(); });
    loop.CancelTimer(cancelled);
    loop.CancelTimer(cancelled);  // twice is harmless
  });
  loop.Run();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(EventLoopTest, FdWatchDeliversReadiness) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  EventLoop loop;
  std::string got;
  loop.WatchFd(fds[0], EPOLLIN, [&](uint32_t) {
    char buf[16];
    ssize_t n = ::read(fds[0], buf, sizeof(buf));
    got.append(buf, n);
    loop.UnwatchFd(
        fds[0]);  // unwatching itself from inside its callback is allowed
    loop.Stop();
  });
  ASSERT_EQ(::write(fds[1], "hi", 2), 2);
  loop.Run();
  EXPECT_EQ(got, "hi");
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace fetchfleet
