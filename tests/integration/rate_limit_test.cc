// The fleet-wide rate limit end to end: a real redis-server, a real
// coordinator, 1 to 5 real workers, and a local HTTP server that records when
// each request arrived.
#include <signal.h>

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/rate_limiter.h"
#include "tests/integration/fleet.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/timing.h"
#include "tests/testing/windows.h"

namespace fetchfleet::testing {
namespace {

using nlohmann::json;

// A request starts within kMaxSlotLateness (20 ms) of its slot, and arrives
// after network and the test server's thread wake-up: the bound is checked
// with that much slack per window. Under AddressSanitizer, with another test
// running beside it on 2 cores, a worker's Redis reply or the test server's
// connection thread is sometimes descheduled ~10 ms more (seen: 8 requests
// over at 1,000/s), so the slack is wider there. Either still catches any real
// excess: a second worker taking the full rate doubles the count in every
// window from 250 ms.
#if defined(__SANITIZE_ADDRESS__)
const absl::Duration kArrivalJitter = kMaxSlotLateness + absl::Milliseconds(30);
#else
const absl::Duration kArrivalJitter = kMaxSlotLateness + absl::Milliseconds(5);
#endif

// Arrival times of requests whose path starts with `prefix`, sorted.
std::vector<absl::Time> ArrivalsOf(const HttpTestServer& server,
                                   const std::string& prefix) {
  std::vector<absl::Time> times;
  for (const auto& [path, at] : server.Arrivals()) {
    if (absl::StartsWith(path, prefix)) times.push_back(at);
  }
  std::sort(times.begin(), times.end());
  return times;
}

// ExpectRateBound asserts the guarantee: in any window W at most R*W + B
// arrivals (W widened by the jitter allowance), for W from 10 ms to 4 s.
void ExpectRateBound(const std::vector<absl::Time>& times, double rate,
                     int burst) {
  if (!kTimed) return;
  for (absl::Duration window : {absl::Milliseconds(10), absl::Milliseconds(100),
                                absl::Milliseconds(250), absl::Seconds(1),
                                absl::Seconds(2), absl::Seconds(4)}) {
    int bound = static_cast<int>(
        rate * absl::ToDoubleSeconds(window + kArrivalJitter) + burst);
    EXPECT_LE(MaxInWindow(times, window), bound)
        << "window " << window << ", rate " << rate << "/s, burst " << burst;
  }
}

// Utilisation: after the initial burst, the achieved rate as a fraction of R.
double Utilisation(const std::vector<absl::Time>& times, double rate,
                   int burst) {
  if (times.size() <= static_cast<size_t>(burst)) return 0;
  double span = absl::ToDoubleSeconds(times.back() - times.front());
  double ideal = (times.size() - burst) / rate;
  return span <= 0 ? 0 : ideal / span;
}

std::string Lines(const HttpTestServer& upstream, const std::string& path,
                  const std::string& key, int n,
                  const std::string& id_prefix = "r") {
  std::string input;
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(&input, "{\"id\": \"", id_prefix, i, "\", \"url\": \"",
                    upstream.Url(absl::StrCat(path, "?i=", i)), "\"",
                    key.empty() ? "" : ", \"rate_key\": \"" + key + "\"",
                    "}\n");
  }
  return input;
}

// ExpectEachOnceAndOk: n results, ids prefix0..prefix(n-1) each exactly once.
void ExpectEachOnceAndOk(const std::vector<json>& results, int n,
                         const std::string& id_prefix = "r") {
  std::map<std::string, int> seen;
  for (const json& r : results) {
    if (!absl::StartsWith(r["id"].get<std::string>(), id_prefix)) continue;
    ++seen[r["id"].get<std::string>()];
    EXPECT_EQ(r["ok"], true) << r.dump();
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(n));
  for (const auto& [id, count] : seen) EXPECT_EQ(count, 1) << id;
}

struct RateCase {
  int workers;
  double rate;
  int burst;
  int requests;
};

class RateBoundTest : public ::testing::TestWithParam<RateCase> {};

// The guarantee and the utilisation, for 1, 3 and 5 workers, at a low rate
// (exactness) and a high one (batched reservations).
TEST_P(RateBoundTest, FleetHoldsTheBoundAndRunsNearTheRate) {
  const RateCase& c = GetParam();
  RedisServer redis;
  HttpTestServer upstream;
  Fleet fleet({"--redis", redis.url()});
  for (int i = 0; i < c.workers; ++i)
    fleet.AddWorker(absl::StrCat("w-", i), {"--redis", redis.url()});
  std::string key = UniqueKey("api");
  std::string path = absl::StrCat("/count/", key);
  CommandResult run = RunCommand(
      fleet.Fetchctl({"submit", "--rate", absl::StrCat(key, "=", c.rate, "/s"),
                      "--burst", absl::StrCat(key, "=", c.burst), "-"}),
      WriteTempFile(Lines(upstream, path, key, c.requests)));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ExpectEachOnceAndOk(ParseResults(run.out), c.requests);
  std::vector<absl::Time> times = ArrivalsOf(upstream, path);
  ASSERT_EQ(times.size(), static_cast<size_t>(c.requests));
  ExpectRateBound(times, c.rate, c.burst);
  double utilisation = Utilisation(times, c.rate, c.burst);
  if (kTimed) {
    EXPECT_GE(utilisation, kMinUtilisation);
    EXPECT_LE(utilisation, 1.0);  // the workers keep 2% headroom
  }
  std::cerr << c.workers << " workers at " << c.rate << "/s burst " << c.burst
            << ": " << c.requests << " requests, utilisation " << utilisation
            << "\n";
}

INSTANTIATE_TEST_SUITE_P(
    Workers, RateBoundTest,
    ::testing::Values(RateCase{1, 20, 1, 80}, RateCase{3, 20, 4, 84},
                      RateCase{5, 20, 10, 90}, RateCase{3, 1000, 50, 3050},
                      RateCase{5, 1000, 20, 3020}),
    [](const ::testing::TestParamInfo<RateCase>& info) {
      return absl::StrCat(info.param.workers, "Workers",
                          static_cast<int>(info.param.rate), "PerSecond");
    });

// An API that answers 429 to the 11th request in any second never sees one
// from a fleet limited to 10/s: the workers. 2% headroom absorbs the jitter
// between when a request starts and when it arrives.
TEST(RateLimitTest, StrictUpstreamSeesNo429) {
  RedisServer redis;
  HttpTestServer upstream;
  Fleet fleet({"--redis", redis.url()});
  for (int i = 0; i < 3; ++i)
    fleet.AddWorker(absl::StrCat("w-", i), {"--redis", redis.url()});
  std::string key = UniqueKey("strict");
  CommandResult run =
      RunCommand(fleet.Fetchctl({"submit", "--rate", key + "=10/s", "-"}),
                 WriteTempFile(Lines(
                     upstream, absl::StrCat("/strict/", key, "/10"), key, 60)));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ExpectEachOnceAndOk(ParseResults(run.out), 60);
  if (kTimed) {
    EXPECT_EQ(upstream.Rejected(), 0);
    EXPECT_NE(run.err.find("60 ok, 0 failed, 0 retries"), std::string::npos)
        << run.err;
  }
}

// A job mixing a 5/s API and an unlimited one: the unlimited part is done at
// full speed while the limited part trickles; limited requests waiting for a
// token hold no worker slots.
TEST(RateLimitTest, ThrottledKeyDoesNotHoldBackOtherKeys) {
  RedisServer redis;
  HttpTestServer upstream;
  Fleet fleet({"--redis", redis.url()});
  fleet.AddWorker("w-0", {"--redis", redis.url(), "--max-inflight", "16"});
  fleet.AddWorker("w-1", {"--redis", redis.url(), "--max-inflight", "16"});
  std::string slow = UniqueKey("slow");
  std::string fast = UniqueKey("fast");
  std::string input = Lines(upstream, "/slow/" + slow, slow, 30, "s") +
                      Lines(upstream, "/fast/" + fast, fast, 2000, "f");
  absl::Time begin = absl::Now();
  CommandResult run =
      RunCommand(fleet.Fetchctl({"submit", "--rate", slow + "=5/s", "-"}),
                 WriteTempFile(input));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::vector<json> results = ParseResults(run.out);
  ExpectEachOnceAndOk(results, 30, "s");
  ExpectEachOnceAndOk(results, 2000, "f");
  std::vector<absl::Time> fast_times = ArrivalsOf(upstream, "/fast/");
  std::vector<absl::Time> slow_times = ArrivalsOf(upstream, "/slow/");
  ASSERT_EQ(fast_times.size(), 2000u);
  ASSERT_EQ(slow_times.size(), 30u);
  // 30 at 5/s take 5.8 s; 2000 unlimited take well under a second here.
  if (kTimed) {
    EXPECT_LT(fast_times.back() - begin, absl::Seconds(3));
  }
  EXPECT_GT(slow_times.back() - slow_times.front(), absl::Seconds(5.5));
  ExpectRateBound(slow_times, 5, 1);
}

// A 429 with Retry-After from one worker's request pauses the key for the whole
// fleet: nobody sends it anything until the pause is over.
TEST(RateLimitTest, RetryAfterPausesTheKeyFleetWide) {
  RedisServer redis;
  HttpTestServer upstream;
  Fleet fleet({"--redis", redis.url()});
  for (int i = 0; i < 3; ++i)
    fleet.AddWorker(absl::StrCat("w-", i), {"--redis", redis.url()});
  std::string key = UniqueKey("busy");
  // The first request to arrive is answered 429 with Retry-After: 2.
  std::string path = absl::StrCat("/throttle/", key, "/1/2");
  CommandResult run =
      RunCommand(fleet.Fetchctl({"submit", "--rate", key + "=40/s", "-"}),
                 WriteTempFile(Lines(upstream, path, key, 120)));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ExpectEachOnceAndOk(ParseResults(run.out), 120);
  std::vector<absl::Time> times = ArrivalsOf(upstream, path);
  ASSERT_EQ(times.size(), 121u);  // one request was sent twice
  // The first arrival got the 429. Requests already granted a slot before it
  // came back may still go out (a few at 40/s); then silence for ~2 s.
  int during_pause = 0;
  for (absl::Time t : times) {
    if (t > times.front() + absl::Milliseconds(200) &&
        t < times.front() + absl::Milliseconds(1900))
      ++during_pause;
  }
  if (kTimed) {
    EXPECT_EQ(during_pause, 0);
  }
  EXPECT_GE(times.back() - times.front(), absl::Seconds(2 + 118 / 40.0 - 0.3));
  EXPECT_NE(run.err.find("120 ok, 0 failed, 1 retries"), std::string::npos)
      << run.err;
}

// Redis dies mid-job and comes back empty: limited keys wait (the default,
// --redis-failure=closed), nothing is lost or sent twice, and the job ends.
TEST(RateLimitTest, RedisRestartMidJobLosesAndDuplicatesNothing) {
  RedisServer redis;
  if (redis.external()) GTEST_SKIP() << "needs a Redis this test can kill";
  HttpTestServer upstream;
  Fleet fleet({"--redis", redis.url()});
  for (int i = 0; i < 3; ++i)
    fleet.AddWorker(absl::StrCat("w-", i),
                    {"--redis", redis.url(), "--redis-timeout", "200ms"});
  std::string key = UniqueKey("restart");
  std::string path = "/restart/" + key;
  Subprocess submit(fleet.Fetchctl({"submit", "--rate", key + "=50/s", "-"}),
                    WriteTempFile(Lines(upstream, path, key, 300)));
  absl::SleepFor(absl::Seconds(2));
  redis.Kill();
  size_t before = ArrivalsOf(upstream, path).size();
  absl::SleepFor(absl::Seconds(2));
  size_t during = ArrivalsOf(upstream, path).size();
  redis.Restart();
  EXPECT_EQ(submit.Wait(), 0) << submit.Stderr();
  ExpectEachOnceAndOk(ParseResults(submit.Stdout()), 300);
  std::vector<absl::Time> times = ArrivalsOf(upstream, path);
  EXPECT_EQ(times.size(), 300u);
  if (kTimed) {
    EXPECT_GT(before, 50u);
    EXPECT_LT(before, 150u);
  }
  // Closed: at most the slots granted before Redis died went out after it.
  EXPECT_LE(during - before, 10u);
  // The restarted Redis forgot the key's state: at most one extra burst.
  ExpectRateBound(times, 50, 1 + 1);
}

// --redis-failure=local: without Redis each worker spends R / live workers.
TEST(RateLimitTest, RedisDownWithLocalFailureModeSharesTheRate) {
  RedisServer redis;
  if (redis.external()) GTEST_SKIP() << "needs a Redis this test can kill";
  HttpTestServer upstream;
  Fleet fleet({"--redis", redis.url()});
  for (int i = 0; i < 2; ++i)
    fleet.AddWorker(absl::StrCat("w-", i),
                    {"--redis", redis.url(), "--redis-failure", "local",
                     "--redis-timeout", "200ms"});
  std::string key = UniqueKey("local");
  std::string path = "/local/" + key;
  CommandResult set =
      RunCommand(fleet.Fetchctl({"limits", "set", key, "20/s"}));
  ASSERT_EQ(set.exit_code, 0) << set.err;
  redis.Kill();
  absl::SleepFor(absl::Milliseconds(500));
  CommandResult run = RunCommand(fleet.Fetchctl({"submit", "-"}),
                                 WriteTempFile(Lines(upstream, path, key, 60)));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ExpectEachOnceAndOk(ParseResults(run.out), 60);
  std::vector<absl::Time> times = ArrivalsOf(upstream, path);
  ASSERT_EQ(times.size(), 60u);
  // Two workers, each with 10/s and a burst of 1; the coordinator spreads the
  // key's requests over them one at a time.
  ExpectRateBound(times, 20, 2);
  if (kTimed) {
    EXPECT_GE(Utilisation(times, 20, 2), 0.9);
  }
}

// Limits live in Redis: a second coordinator on the same Redis sees a limit
// set through the first, and a delete through it reaches the first. Bad
// limits are refused with a clear message.
TEST(RateLimitTest, LimitsLiveInRedisAndEveryCoordinatorSeesThem) {
  RedisServer redis;
  Fleet a({"--redis", redis.url()});
  Fleet b({"--redis", redis.url()});
  std::string key = UniqueKey("shared");
  CommandResult set =
      RunCommand(a.Fetchctl({"limits", "set", key, "600/m", "--burst", "3"}));
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_NE(redis.Cli({"HGET", "ff:limits", key}).find("10 3"),
            std::string::npos);
  auto listed = [&](Fleet& fleet) {
    CommandResult list = RunCommand(fleet.Fetchctl({"limits", "list"}));
    EXPECT_EQ(list.exit_code, 0) << list.err;
    return list.out;
  };
  auto eventually = [](auto condition) {
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (!condition() && absl::Now() < deadline)
      absl::SleepFor(absl::Milliseconds(100));
    return condition();
  };
  EXPECT_TRUE(eventually([&] {
    std::string out = listed(b);
    return out.find(key) != std::string::npos &&
           out.find("10/s") != std::string::npos;
  })) << listed(b);
  CommandResult del = RunCommand(b.Fetchctl({"limits", "delete", key}));
  ASSERT_EQ(del.exit_code, 0) << del.err;
  EXPECT_TRUE(eventually([&] {
    return listed(a).find(key) == std::string::npos;
  })) << listed(a);

  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"limits", "set", key, "0/s"},
        std::vector<std::string>{"limits", "set", key, "10/x"},
        std::vector<std::string>{"limits", "set", key, "10/s", "--burst", "0"},
        std::vector<std::string>{"limits", "set", "", "10/s"}}) {
    CommandResult refused = RunCommand(a.Fetchctl(bad));
    EXPECT_EQ(refused.exit_code, 2) << bad[3] << ": " << refused.err;
    EXPECT_FALSE(refused.err.empty());
  }
}

}  // namespace
}  // namespace fetchfleet::testing
