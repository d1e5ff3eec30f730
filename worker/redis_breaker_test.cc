// The shared breaker's Redis side against a real redis-server: two workers'
// breakers (each a BreakerSet and a RedisCircuitBreaker on its own loop), the
// pub/sub events, one probe among many claims, batching of many keys.
#include "worker/redis_breaker.h"

#include <atomic>
#include <future>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/breaker_scripts.h"
#include "common/loop_thread.h"
#include "gtest/gtest.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/timing.h"
#include "worker/breaker_events.h"

namespace fetchfleet::worker {
namespace {

using testing::RedisServer;
using testing::UniqueKey;
using testing::WaitFor;

// One worker's breakers: its BreakerSet, a RedisCircuitBreaker and the
// events subscriber on a loop thread.
class Node {
 public:
  Node(const RedisServer& redis, std::string name) : set_(Clock::Real()) {
    set_.set_live_workers(3);
    set_.set_event_listener([this](v1::BreakerEvent event) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(std::move(event));
    });
    RedisCircuitBreaker::Options options;
    options.redis.url = *RedisUrl::Parse(redis.url());
    options.worker_name = std::move(name);
    thread_.Call([&] {
      breaker_ =
          std::make_unique<RedisCircuitBreaker>(thread_.loop(), &set_, options);
      breaker_->Start();
      events_sub_ =
          std::make_unique<BreakerEvents>(thread_.loop(), &set_, options.redis);
      events_sub_->Start();
    });
  }
  ~Node() {
    thread_.Call([&] {
      breaker_.reset();
      events_sub_.reset();
    });
  }

  void Record(const std::string& key, CallOutcome outcome, int n) {
    thread_.Call([&] {
      for (int i = 0; i < n; ++i) breaker_->Record(key, outcome);
    });
  }
  Breaker::Admission Admit(const std::string& key) {
    std::promise<Breaker::Admission> done;
    auto result = done.get_future();
    thread_.loop()->Post([&] {
      breaker_->Admit(key, absl::Seconds(5),
                      [&](Breaker::Admission a) { done.set_value(a); });
    });
    return result.get();
  }
  void ProbeDone(const std::string& key, uint64_t token, bool success) {
    thread_.Call([&] { breaker_->ProbeDone(key, token, success); });
  }
  bool ViewClosed(const std::string& key) { return set_.ViewClosed(key); }
  uint64_t redis_calls() {
    return thread_.Call([&] { return breaker_->redis_calls(); });
  }
  // Ready: the breaker's connection and the subscription are both up (until
  // then the local breaker decides, and the views miss events).
  bool Ready() {
    return thread_.Call([&] {
      return breaker_->redis_connected() && events_sub_->connected();
    });
  }
  std::vector<v1::BreakerEvent> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  BreakerSet* set() { return &set_; }

 private:
  BreakerSet set_;
  LoopThread thread_;
  std::unique_ptr<RedisCircuitBreaker> breaker_;
  std::unique_ptr<BreakerEvents> events_sub_;
  std::mutex mu_;
  std::vector<v1::BreakerEvent> events_;
};

void SetOpenPeriod(BreakerSet* set, const std::string& key,
                   absl::Duration open) {
  v1::BreakerTable table;
  v1::BreakerSetting* setting = table.add_settings();
  setting->set_key(key);
  BreakerConfig config;
  config.open = open;
  *setting->mutable_config() = config.ToProto();
  set->SetConfigs(table);
}

// Failures from two workers trip the fleet's breaker; exactly one of them
// hears that it tripped it, and a third, idle worker's view turns open via
// pub/sub without any call of its own.
TEST(RedisBreaker, TwoWorkersTripItAndEveryoneHears) {
  RedisServer redis;
  Node a(redis, "a"), b(redis, "b"), idle(redis, "idle");
  ASSERT_TRUE(WaitFor([&] { return a.Ready() && b.Ready() && idle.Ready(); }));
  std::string key = UniqueKey("api");
  a.Record(key, CallOutcome::kFailure, 5);
  ASSERT_TRUE(WaitFor([&] { return a.redis_calls() >= 1; }));
  absl::SleepFor(absl::Milliseconds(150));
  EXPECT_TRUE(idle.ViewClosed(key));  // one worker alone: no quorum
  b.Record(key, CallOutcome::kFailure, 5);
  ASSERT_TRUE(WaitFor([&] { return !idle.ViewClosed(key); }));
  EXPECT_EQ(idle.Admit(key).verdict, Breaker::Verdict::kRefuse);
  // The idle worker may hear of the trip (pub/sub) before the tripping
  // worker's own loop has recorded its event: wait for that, then check that
  // it was one worker's only.
  ASSERT_TRUE(
      WaitFor([&] { return a.events().size() + b.events().size() >= 1; }));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(a.events().size() + b.events().size(), 1u);
  std::vector<v1::BreakerEvent> events = b.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state(), v1::BREAKER_OPEN);
  EXPECT_EQ(events[0].failures(), 10u);
  EXPECT_EQ(events[0].failing_workers(), 2u);
}

// After the open period many workers claim at once: one gets the probe.
// Its success closes the breaker for everyone.
TEST(RedisBreaker, OneProbeAmongManyClaimsThenClosed) {
  RedisServer redis;
  Node a(redis, "a"), b(redis, "b"), c(redis, "c");
  std::string key = UniqueKey("api");
  for (Node* n : {&a, &b, &c})
    SetOpenPeriod(n->set(), key, absl::Milliseconds(300));
  ASSERT_TRUE(WaitFor([&] { return a.Ready() && b.Ready() && c.Ready(); }));
  a.Record(key, CallOutcome::kFailure, 6);
  b.Record(key, CallOutcome::kFailure, 6);
  ASSERT_TRUE(WaitFor([&] { return !c.ViewClosed(key); }));
  absl::SleepFor(absl::Milliseconds(350));
  int probes = 0;
  uint64_t token = 0;
  Node* prober = nullptr;
  for (int round = 0; round < 5; ++round) {
    for (Node* n : {&a, &b, &c}) {
      Breaker::Admission admission = n->Admit(key);
      EXPECT_NE(admission.verdict, Breaker::Verdict::kCall);
      if (admission.verdict == Breaker::Verdict::kProbe) {
        ++probes;
        token = admission.probe_token;
        prober = n;
      }
    }
    absl::SleepFor(absl::Milliseconds(110));  // past the claim back-off
  }
  ASSERT_EQ(probes, 1);
  prober->ProbeDone(key, token, true);
  ASSERT_TRUE(WaitFor([&] {
    return a.ViewClosed(key) && b.ViewClosed(key) && c.ViewClosed(key);
  }));
  EXPECT_EQ(a.Admit(key).verdict, Breaker::Verdict::kCall);
}

// Outcomes for 300 keys seen in one 100 ms go to Redis in 3 calls, not 300.
TEST(RedisBreaker, ManyKeysShareOneCall) {
  RedisServer redis;
  Node a(redis, "a");
  ASSERT_TRUE(WaitFor([&] { return a.Ready(); }));
  uint64_t before = a.redis_calls();
  std::string prefix = UniqueKey("host");
  for (int i = 0; i < 300; ++i)
    a.Record(absl::StrCat(prefix, "-", i), CallOutcome::kSuccess, 1);
  ASSERT_TRUE(WaitFor([&] { return a.redis_calls() - before >= 3; }));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(a.redis_calls() - before, 3u);
  // The last key's window holds its one success.
  EXPECT_EQ(redis.Cli({"HVALS", BreakerStateKey(prefix + "-299")}), "1\n");
}

// While Redis is unreachable each worker's own breaker decides: a dead
// upstream is still cut off, per worker.
TEST(RedisBreaker, WithoutRedisTheLocalBreakerDecides) {
  RedisServer redis;
  if (redis.external()) GTEST_SKIP() << "kills Redis";
  Node a(redis, "a");
  ASSERT_TRUE(WaitFor([&] { return a.Ready(); }));
  redis.Kill();
  std::string key = UniqueKey("api");
  ASSERT_TRUE(WaitFor([&] {
    a.Record(key, CallOutcome::kFailure, 1);
    return a.Admit(key).verdict == Breaker::Verdict::kRefuse;
  }));
  std::vector<v1::BreakerEvent> events = a.events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().state(), v1::BREAKER_OPEN);
}

}  // namespace
}  // namespace fetchfleet::worker
