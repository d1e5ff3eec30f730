// RedisClient and RedisRateLimiter against a real redis-server (see
// tests/testing/redis_server.h), each on its own event loop thread as in a
// worker.
#include "worker/redis_rate_limiter.h"

#include <signal.h>

#include <algorithm>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "common/loop_thread.h"
#include "gtest/gtest.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/timing.h"
#include "tests/testing/windows.h"
#include "worker/redis_gcra.h"

namespace fetchfleet::worker {
namespace {

using testing::MaxInWindow;
using testing::RedisServer;
using testing::UniqueKey;
using testing::WaitFor;

RedisUrl UrlOf(const RedisServer& server) {
  return *RedisUrl::Parse(server.url());
}

RedisClient::Options Options(const RedisServer& server) {
  RedisClient::Options options;
  options.url = UrlOf(server);
  return options;
}

// A client on a loop thread with a way to run commands synchronously from the
// test thread.
class Client {
 public:
  Client(LoopThread* thread, RedisClient::Options options) : thread_(thread) {
    thread_->Call([&] {
      client_ = std::make_unique<RedisClient>(thread_->loop(), options);
      client_->Start();
    });
  }
  ~Client() {
    thread_->Call([&] { client_.reset(); });
  }
  bool connected() {
    return thread_->Call([&] { return client_->connected(); });
  }
  absl::StatusOr<RedisReply> Run(std::vector<std::string> args) {
    std::promise<absl::StatusOr<RedisReply>> done;
    auto result = done.get_future();
    thread_->loop()->Post([&] {
      client_->Command(args, [&](absl::StatusOr<RedisReply> reply) {
        done.set_value(std::move(reply));
      });
    });
    return result.get();
  }
  absl::StatusOr<RedisReply> Eval(const RedisScript& script) {
    std::promise<absl::StatusOr<RedisReply>> done;
    auto result = done.get_future();
    thread_->loop()->Post([&] {
      client_->EvalSha(script, {}, {}, [&](absl::StatusOr<RedisReply> reply) {
        done.set_value(std::move(reply));
      });
    });
    return result.get();
  }

 private:
  LoopThread* thread_;
  std::unique_ptr<RedisClient> client_;
};

TEST(RedisClientTest, CommandsRepliesAndErrors) {
  RedisServer redis;
  LoopThread thread;
  Client client(&thread, Options(redis));
  ASSERT_TRUE(WaitFor([&] { return client.connected(); }));
  std::string key = UniqueKey("ff:test");
  ASSERT_TRUE(client.Run({"SET", key, "v a l"}).ok());
  auto get = client.Run({"GET", key});
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ(get->str, "v a l");  // arguments are binary-safe, not split
  auto bad = client.Run({"INCR", key});
  EXPECT_TRUE(absl::IsFailedPrecondition(bad.status())) << bad.status();
  auto list = client.Run({"MGET", key, key + ":none"});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->elements.size(), 2u);
  EXPECT_EQ(list->elements[1].type, RedisReply::Type::kNil);
  client.Run({"DEL", key}).IgnoreError();
}

TEST(RedisClientTest, EvalShaLoadsTheScriptAgainAfterScriptFlush) {
  RedisServer redis;
  LoopThread thread;
  Client client(&thread, Options(redis));
  ASSERT_TRUE(WaitFor([&] { return client.connected(); }));
  RedisScript script("return 42");
  auto first = client.Eval(script);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->integer, 42);
  ASSERT_TRUE(client.Run({"SCRIPT", "FLUSH"}).ok());
  auto second = client.Eval(script);  // NOSCRIPT, then EVAL
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->integer, 42);
}

TEST(RedisClientTest, ReconnectsAfterRedisRestarts) {
  RedisServer redis;
  if (redis.external()) GTEST_SKIP() << "needs a Redis this test can kill";
  LoopThread thread;
  Client client(&thread, Options(redis));
  ASSERT_TRUE(WaitFor([&] { return client.connected(); }));
  redis.Kill();
  ASSERT_TRUE(WaitFor([&] { return !client.connected(); }));
  auto down = client.Run({"PING"});
  EXPECT_TRUE(absl::IsUnavailable(down.status())) << down.status();
  redis.Restart();
  ASSERT_TRUE(WaitFor([&] { return client.connected(); }));
  auto up = client.Run({"PING"});
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->str, "PONG");
}

TEST(RedisClientTest, AFrozenServerTimesOutInMillisecondsNotSeconds) {
  RedisServer redis;
  if (redis.external()) GTEST_SKIP() << "needs a Redis this test can freeze";
  LoopThread thread;
  RedisClient::Options options = Options(redis);
  options.command_timeout = absl::Milliseconds(200);
  Client client(&thread, options);
  ASSERT_TRUE(WaitFor([&] { return client.connected(); }));
  ::kill(redis.pid(), SIGSTOP);
  absl::Time start = absl::Now();
  auto frozen = client.Run({"PING"});
  absl::Duration took = absl::Now() - start;
  ::kill(redis.pid(), SIGCONT);
  EXPECT_FALSE(frozen.ok());
  EXPECT_LT(took, absl::Milliseconds(700));
  EXPECT_GE(took, absl::Milliseconds(150));
  ASSERT_TRUE(WaitFor([&] { return client.connected(); }));
  EXPECT_TRUE(client.Run({"PING"}).ok());
}

// ---------------------------------------------------------------------------
// RedisRateLimiter

// A worker-like limiter: a loop thread, a limit table, a limiter on it. It
// records each grant's absolute start time.
class Limiter {
 public:
  Limiter(const RedisServer& redis,
          RedisFailureMode failure = RedisFailureMode::kClosed)
      : table_(Clock::Real()), fallback_(Clock::Real(), &table_) {
    RedisRateLimiter::Options options;
    options.redis.url = UrlOf(redis);
    options.redis.command_timeout = absl::Milliseconds(200);
    options.failure = failure;
    thread_.Call([&] {
      limiter_ = std::make_unique<RedisRateLimiter>(thread_.loop(), &table_,
                                                    &fallback_, options);
      limiter_->Start();
    });
  }
  ~Limiter() {
    thread_.Call([&] { limiter_.reset(); });
  }
  LimitTable& table() { return table_; }
  bool connected() {
    return thread_.Call([&] { return limiter_->redis_connected(); });
  }
  uint64_t redis_calls() {
    return thread_.Call([&] { return limiter_->redis_calls(); });
  }
  void Reserve(const std::string& key, int n) {
    thread_.Call([&] {
      for (int i = 0; i < n; ++i) {
        limiter_->Reserve(key, [this](absl::Duration delay) {
          std::lock_guard<std::mutex> lock(mu_);
          starts_.push_back(thread_.loop()->Now() + delay);
        });
      }
    });
  }
  // ReserveThenStall reserves n, then stalls the loop for `stall` right after
  // the reserve call has gone out, so its reply waits in the socket.
  void ReserveThenStall(const std::string& key, int n, absl::Duration stall) {
    thread_.Call([&] {
      for (int i = 0; i < n; ++i) {
        limiter_->Reserve(key, [this](absl::Duration delay) {
          std::lock_guard<std::mutex> lock(mu_);
          starts_.push_back(thread_.loop()->Now() + delay);
        });
      }
      // Timers due together run in the order added: the call goes first.
      thread_.loop()->RunAfter(absl::ZeroDuration(),
                               [stall] { absl::SleepFor(stall); });
    });
  }
  uint64_t stale_replies() {
    return thread_.Call([&] { return limiter_->stale_replies(); });
  }
  void Pause(const std::string& key, absl::Duration d) {
    thread_.Call([&] { limiter_->Pause(key, d); });
  }
  std::vector<absl::Time> starts() {
    std::lock_guard<std::mutex> lock(mu_);
    return starts_;
  }
  size_t granted() { return starts().size(); }

 private:
  LimitTable table_;
  LocalRateLimiter fallback_;
  LoopThread thread_;
  std::unique_ptr<RedisRateLimiter> limiter_;
  std::mutex mu_;
  std::vector<absl::Time> starts_;
};

TEST(RedisRateLimiterTest, UnlimitedKeysNeverAskRedis) {
  RedisServer redis;
  Limiter limiter(redis);
  ASSERT_TRUE(WaitFor([&] { return limiter.connected(); }));
  limiter.Reserve("free", 1000);
  EXPECT_EQ(limiter.granted(), 1000u);
  EXPECT_EQ(limiter.redis_calls(), 0u);
}

TEST(RedisRateLimiterTest, TwoWorkersShareOneExactScheduleAtALowRate) {
  RedisServer redis;
  Limiter a(redis), b(redis);
  ASSERT_TRUE(WaitFor([&] { return a.connected() && b.connected(); }));
  std::string key = UniqueKey("low");
  a.table().SetLimit(key, RateLimit{20, 1});
  b.table().SetLimit(key, RateLimit{20, 1});
  a.Reserve(key, 15);
  b.Reserve(key, 15);
  ASSERT_TRUE(WaitFor([&] { return a.granted() + b.granted() == 30; }));
  std::vector<absl::Time> all = a.starts();
  for (absl::Time t : b.starts()) all.push_back(t);
  std::sort(all.begin(), all.end());
  // Slots are 50 ms apart on Redis' clock. Seen from here each is moved by
  // its reply's travel and handling time: well under a millisecond, a few on
  // a loaded machine (sanitizers, parallel tests). Two slots handed out as
  // one would be 0 ms apart.
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_GE(all[i] - all[i - 1], absl::Milliseconds(40)) << i;
  }
  EXPECT_LE(all.back() - all.front(), absl::Milliseconds(29 * 50 + 5));
  EXPECT_GE(a.granted(), 10u);  // both got a fair part
  EXPECT_GE(b.granted(), 10u);
}

TEST(RedisRateLimiterTest, HighRatesTakeSlotsInBatches) {
  RedisServer redis;
  Limiter a(redis), b(redis);
  ASSERT_TRUE(WaitFor([&] { return a.connected() && b.connected(); }));
  std::string key = UniqueKey("high");
  a.table().SetLimit(key, RateLimit{50000, 50});
  b.table().SetLimit(key, RateLimit{50000, 50});
  // Demand arrives as a worker's would: 100 requests every 2 ms per worker.
  for (int round = 0; round < 100; ++round) {
    a.Reserve(key, 100);
    b.Reserve(key, 100);
    absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_TRUE(WaitFor([&] { return a.granted() + b.granted() == 20000; }));
  uint64_t calls = a.redis_calls() + b.redis_calls();
  EXPECT_LE(calls * 20, 20000u) << calls << " round trips";
  std::vector<absl::Time> all = a.starts();
  for (absl::Time t : b.starts()) all.push_back(t);
  for (absl::Duration w : {absl::Milliseconds(10), absl::Milliseconds(100)}) {
    // R*W + B, with 5 ms for the replies' travel and handling: starts are
    // seen here as reply time + delay, and a loaded machine (sanitizers,
    // parallel tests) delays some replies. Slots granted twice would double
    // the count in both windows.
    int bound = static_cast<int>(
                    50000 * absl::ToDoubleSeconds(w + absl::Milliseconds(5))) +
                50;
    EXPECT_LE(MaxInWindow(all, w), bound) << w;
  }
}

// A reply read long after it came (the loop stalled) may hold slots already
// past: they are given up and asked for again, not started late in a bunch.
TEST(RedisRateLimiterTest, RepliesThatWaitedOutAStallAreGivenUp) {
  RedisServer redis;
  Limiter limiter(redis);
  ASSERT_TRUE(WaitFor([&] { return limiter.connected(); }));
  std::string key = UniqueKey("stall");
  limiter.table().SetLimit(key, RateLimit{1000, 1});
  for (int i = 0; i < 5; ++i) {  // round trips on an idle loop: the baseline
    limiter.Reserve(key, 1);
    ASSERT_TRUE(WaitFor([&] { return limiter.granted() == size_t(i + 1); }));
  }
  EXPECT_EQ(limiter.stale_replies(), 0u);
  // Past the calls' spacing (5 ms), so the reserve goes out before the stall
  // rather than after it.
  absl::SleepFor(absl::Milliseconds(20));
  limiter.ReserveThenStall(key, 10, absl::Milliseconds(80));
  ASSERT_TRUE(WaitFor([&] { return limiter.granted() == 15; }));
  EXPECT_EQ(limiter.stale_replies(), 1u);
}

TEST(RedisRateLimiterTest, PauseFromOneWorkerHoldsTheOtherBack) {
  RedisServer redis;
  Limiter a(redis), b(redis);
  ASSERT_TRUE(WaitFor([&] { return a.connected() && b.connected(); }));
  std::string key = UniqueKey("paused");
  a.table().SetLimit(key, RateLimit{100, 1});
  b.table().SetLimit(key, RateLimit{100, 1});
  a.Pause(key, absl::Seconds(1));
  absl::SleepFor(absl::Milliseconds(50));   // the pause reaches Redis
  absl::Time asked = Clock::Real()->Now();  // the loops' clock
  b.Reserve(key, 1);
  ASSERT_TRUE(WaitFor([&] { return b.granted() == 1; }));
  EXPECT_GE(b.starts()[0] - asked, absl::Milliseconds(900));
}

TEST(RedisRateLimiterTest, ClosedModeWaitsForRedisAndLocalModeGoesOn) {
  RedisServer redis;
  if (redis.external()) GTEST_SKIP() << "needs a Redis this test can kill";
  Limiter closed(redis, RedisFailureMode::kClosed);
  Limiter local(redis, RedisFailureMode::kLocal);
  ASSERT_TRUE(WaitFor([&] { return closed.connected() && local.connected(); }));
  std::string key = UniqueKey("down");
  closed.table().SetLimit(key, RateLimit{10, 1});
  local.table().SetLimit(key, RateLimit{10, 1});
  redis.Kill();
  ASSERT_TRUE(
      WaitFor([&] { return !closed.connected() && !local.connected(); }));
  closed.Reserve(key, 3);
  local.Reserve(key, 3);
  ASSERT_TRUE(WaitFor([&] { return local.granted() == 3; }));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(closed.granted(), 0u);  // limited keys wait for Redis
  closed.Reserve("unlimited", 2);   // unlimited keys go on
  EXPECT_EQ(closed.granted(), 2u);
  redis.Restart();
  ASSERT_TRUE(WaitFor([&] { return closed.granted() == 5; }));
}

}  // namespace
}  // namespace fetchfleet::worker
