// fetchfleet-limiter-bench: the fleet-wide limiter alone, against a real Redis.
//
//   fetchfleet-limiter-bench script
//       prints the reserve script, for `redis-benchmark ... EVAL` beside us
//   fetchfleet-limiter-bench run REDIS_URL RATE WORKERS SECONDS
//       RATE: starts per second for one key, or "unlimited". WORKERS limiters,
//       each on its own event loop thread and Redis connection as in a worker,
//       keep enough demand waiting to run the key at its limit; prints the
//       decisions (granted starts) per second and the Redis round trips per
//       decision, counted by Redis itself (INFO commandstats).
#include <atomic>
#include <cstdio>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/loop_thread.h"
#include "common/rate_limiter.h"
#include "common/redis_client.h"
#include "worker/redis_gcra.h"
#include "worker/redis_rate_limiter.h"

namespace fetchfleet {
namespace {

// One worker's limiter, with a demand driver as a worker sees it: every
// millisecond `per_ms` new requests arrive (at most `max_pending` waiting).
class BenchWorker {
 public:
  BenchWorker(const RedisUrl& url, const std::string& key,
              std::optional<RateLimit> limit, int workers, double per_ms,
              int64_t max_pending)
      : table_(Clock::Real()),
        fallback_(Clock::Real(), &table_),
        key_(key),
        per_ms_(per_ms),
        max_pending_(max_pending) {
    // What the coordinator would push: the limit and the live worker count.
    v1::LimitTable pushed;
    pushed.set_live_workers(workers);
    if (limit) {
      v1::KeyLimit* entry = pushed.add_limits();
      entry->set_key(key);
      entry->set_per_second(limit->per_second);
      entry->set_burst(limit->burst);
    }
    table_.Replace(pushed);
    worker::RedisRateLimiter::Options options;
    options.redis.url = url;
    thread_.Call([&] {
      limiter_ = std::make_unique<worker::RedisRateLimiter>(
          thread_.loop(), &table_, &fallback_, options);
      limiter_->Start();
    });
  }
  ~BenchWorker() {
    thread_.Call([&] { limiter_.reset(); });
  }

  bool connected() {
    return thread_.Call([&] { return limiter_->redis_connected(); });
  }
  void Run(absl::Time until) {
    until_ = until;
    thread_.Call([&] { TopUp(); });
  }
  int64_t pending() {
    return thread_.Call([&] { return pending_; });
  }
  int64_t in_window() const { return in_window_.load(); }
  int64_t granted() const { return granted_.load(); }

 private:
  void TopUp() {
    absl::Time now = thread_.loop()->Now();
    if (now >= until_) return;
    // Timers fire late; demand follows the clock, not the ticks.
    if (last_tick_ != absl::InfinitePast())
      arrived_ += per_ms_ * absl::ToDoubleMilliseconds(now - last_tick_);
    last_tick_ = now;
    for (; arrived_ >= 1 && pending_ < max_pending_; arrived_ -= 1) {
      ++pending_;
      limiter_->Reserve(key_, [this](absl::Duration delay) {
        --pending_;
        ++granted_;
        if (thread_.loop()->Now() + delay <= until_) ++in_window_;
      });
    }
    thread_.loop()->RunAfter(absl::Milliseconds(1), [this] { TopUp(); });
  }

  LimitTable table_;
  LocalRateLimiter fallback_;
  std::string key_;
  double per_ms_;
  int64_t max_pending_;
  double arrived_ = 0;
  absl::Time last_tick_ = absl::InfinitePast();
  LoopThread thread_;
  std::unique_ptr<worker::RedisRateLimiter> limiter_;
  absl::Time until_;
  int64_t pending_ = 0;  // loop thread
  std::atomic<int64_t> in_window_{0};
  std::atomic<int64_t> granted_{0};
};

// ScriptCalls: EVALSHA + EVAL calls Redis has served, from INFO commandstats.
int64_t ScriptCalls(LoopThread* thread, RedisClient* client) {
  std::promise<absl::StatusOr<RedisReply>> done;
  auto result = done.get_future();
  thread->loop()->Post([&] {
    client->Command({"INFO", "commandstats"},
                    [&](absl::StatusOr<RedisReply> reply) {
                      done.set_value(std::move(reply));
                    });
  });
  absl::StatusOr<RedisReply> reply = result.get();
  if (!reply.ok()) {
    std::fprintf(stderr, "INFO commandstats: %s\n",
                 std::string(reply.status().message()).c_str());
    std::exit(1);
  }
  int64_t calls = 0;
  for (absl::string_view line : absl::StrSplit(reply->str, "\r\n")) {
    // cmdstat_evalsha:calls=123,usec=...
    if (!absl::StartsWith(line, "cmdstat_evalsha:") &&
        !absl::StartsWith(line, "cmdstat_eval:"))
      continue;
    size_t at = line.find("calls=");
    size_t end = line.find(',', at);
    int64_t n = 0;
    if (at != absl::string_view::npos &&
        absl::SimpleAtoi(line.substr(at + 6, end - at - 6), &n))
      calls += n;
  }
  return calls;
}

int Run(const RedisUrl& url, const std::string& rate_text, int workers,
        double seconds) {
  std::optional<RateLimit> limit;
  if (rate_text != "unlimited") {
    double rate = 0;
    if (!absl::SimpleAtod(rate_text, &rate) || rate <= 0) {
      std::fprintf(stderr, "RATE must be a number or unlimited\n");
      return 2;
    }
    // A burst of 10 ms worth.
    limit = RateLimit{rate, std::max<int64_t>(1, rate / 100)};
  }
  std::string key = absl::StrCat("bench-", absl::ToUnixMicros(absl::Now()));
  // Demand: 10% more than the limit, spread evenly over the workers and
  // over time, as a coordinator feeds them; unlimited, 20,000 per ms each.
  double per_ms = limit ? 1.1 * limit->per_second / workers / 1000 : 20000;
  int64_t max_pending =
      limit ? std::max<int64_t>(64, limit->per_second * 0.2 / workers) : 20000;

  LoopThread stats_thread;
  RedisClient::Options stats_options;
  stats_options.url = url;
  std::unique_ptr<RedisClient> stats;
  stats_thread.Call([&] {
    stats = std::make_unique<RedisClient>(stats_thread.loop(), stats_options);
    stats->Start();
  });
  std::vector<std::unique_ptr<BenchWorker>> fleet;
  for (int i = 0; i < workers; ++i)
    fleet.push_back(std::make_unique<BenchWorker>(url, key, limit, workers,
                                                  per_ms, max_pending));
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  auto all_connected = [&] {
    if (!stats_thread.Call([&] { return stats->connected(); })) return false;
    for (auto& w : fleet)
      if (!w->connected()) return false;
    return true;
  };
  while (!all_connected()) {
    if (absl::Now() > deadline) {
      std::fprintf(stderr, "cannot reach %s\n", url.ToString().c_str());
      return 1;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }

  int64_t calls_before = ScriptCalls(&stats_thread, stats.get());
  // The loops' clock (monotonic), not the wall clock.
  absl::Time until = Clock::Real()->Now() + absl::Seconds(seconds);
  for (auto& w : fleet) w->Run(until);
  absl::SleepFor(absl::Seconds(seconds));
  // Let the calls already in flight come back.
  absl::SleepFor(absl::Milliseconds(300));
  int64_t calls = ScriptCalls(&stats_thread, stats.get()) - calls_before;
  int64_t in_window = 0, granted = 0;
  for (auto& w : fleet) {
    in_window += w->in_window();
    granted += w->granted();
  }
  double per_second = in_window / seconds;
  std::printf(
      "limiter %s, %d workers: %.0f decisions/s%s; %lld Redis script calls "
      "for %lld decisions = %.4f round trips per decision\n",
      limit ? absl::StrCat(rate_text, "/s").c_str() : "unlimited", workers,
      per_second,
      limit ? absl::StrFormat(" (%.1f%% of the limit)",
                              100 * per_second / limit->per_second)
                  .c_str()
            : "",
      static_cast<long long>(calls), static_cast<long long>(granted),
      granted > 0 ? static_cast<double>(calls) / granted : 0.0);
  fleet.clear();
  stats_thread.Call([&] { stats.reset(); });
  return 0;
}

}  // namespace
}  // namespace fetchfleet

int main(int argc, char** argv) {
  using namespace fetchfleet;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && args[0] == "script") {
    std::fputs(worker::ReserveScript().body().c_str(), stdout);
    return 0;
  }
  int workers = 0;
  double seconds = 0;
  if (args.size() == 5 && args[0] == "run" &&
      absl::SimpleAtoi(args[3], &workers) &&
      absl::SimpleAtod(args[4], &seconds) && workers > 0 && seconds > 0) {
    auto url = RedisUrl::Parse(args[1]);
    if (!url.ok()) {
      std::fprintf(stderr, "%s\n", std::string(url.status().message()).c_str());
      return 2;
    }
    return Run(*url, args[2], workers, seconds);
  }
  std::fprintf(stderr,
               "usage: fetchfleet-limiter-bench script\n"
               "       fetchfleet-limiter-bench run REDIS_URL RATE|unlimited "
               "WORKERS SECONDS\n");
  return 2;
}
