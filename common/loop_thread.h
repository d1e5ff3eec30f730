// LoopThread: an EventLoop running on a thread of its own, for tests and
// benchmarks that drive loop-bound objects from outside. Call runs a function
// on the loop and waits for its result.
#pragma once

#include <future>
#include <thread>
#include <type_traits>

#include "common/event_loop.h"

namespace fetchfleet {

class LoopThread {
 public:
  LoopThread() : thread_([this] { loop_.Run(); }) {}
  ~LoopThread() {
    loop_.Stop();
    thread_.join();
  }
  LoopThread(const LoopThread&) = delete;
  LoopThread& operator=(const LoopThread&) = delete;

  EventLoop* loop() { return &loop_; }

  // Call runs `f` on the loop thread and returns what it returned. Not from
  // the loop thread itself (it would wait for itself).
  template <typename F>
  auto Call(F f) -> decltype(f()) {
    using Result = decltype(f());
    std::promise<Result> done;
    std::future<Result> result = done.get_future();
    loop_.Post([&] {
      if constexpr (std::is_void_v<Result>) {
        f();
        done.set_value();
      } else {
        done.set_value(f());
      }
    });
    return result.get();
  }

 private:
  EventLoop loop_;
  std::thread thread_;
};

}  // namespace fetchfleet
