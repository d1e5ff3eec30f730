// Shared circuit breakers end to end: a real redis-server, a real coordinator,
// three real workers, and a local HTTP server whose /switch/NAME the test
// takes down and brings back.
#include <atomic>
#include <map>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/integration/fleet.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/timing.h"

namespace fetchfleet::testing {
namespace {

using nlohmann::json;

std::string Lines(const HttpTestServer& upstream, const std::string& key,
                  int n) {
  std::string input;
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(&input, "{\"id\": \"r", i, "\", \"url\": \"",
                    upstream.Url(absl::StrCat("/switch/", key, "?i=", i)),
                    "\", \"rate_key\": \"", key, "\"}\n");
  }
  return input;
}

std::vector<absl::Time> ArrivalsOf(const HttpTestServer& server,
                                   const std::string& key) {
  std::vector<absl::Time> times;
  for (const auto& [path, at] : server.Arrivals()) {
    if (path == "/switch/" + key) times.push_back(at);
  }
  std::sort(times.begin(), times.end());
  return times;
}

int CountBetween(const std::vector<absl::Time>& times, absl::Time from,
                 absl::Time to) {
  int n = 0;
  for (absl::Time t : times) n += (t > from && t <= to) ? 1 : 0;
  return n;
}

// Results by id; each id must come exactly once.
std::map<std::string, json> ById(const std::vector<json>& results, int n) {
  std::map<std::string, json> by_id;
  for (const json& r : results) {
    std::string id = r["id"].get<std::string>();
    EXPECT_EQ(by_id.count(id), 0u) << "twice: " << id;
    by_id[id] = r;
  }
  EXPECT_EQ(by_id.size(), static_cast<size_t>(n));
  return by_id;
}

// HashField reads one field of the key's breaker hash in Redis.
std::string HashField(const RedisServer& redis, const std::string& key,
                      const std::string& field) {
  return std::string(absl::StripAsciiWhitespace(
      redis.Cli({"HGET", absl::StrCat("ff:br:{", key, "}"), field})));
}

// TripWatcher polls Redis until the key's breaker first opens and keeps the
// moment (Redis' own opened_at, in wall-clock ms).
class TripWatcher {
 public:
  TripWatcher(const RedisServer* redis, std::string key)
      : thread_([this, redis, key] {
          while (!stop_) {
            int64_t ms = 0;
            if (absl::SimpleAtoi(HashField(*redis, key, "opened_at"), &ms) &&
                ms > 0) {
              opened_ms_ = ms;
              return;
            }
            absl::SleepFor(absl::Milliseconds(5));
          }
        }) {}
  ~TripWatcher() {
    stop_ = true;
    thread_.join();
  }
  // The first trip, or InfinitePast if none yet.
  absl::Time tripped() const {
    int64_t ms = opened_ms_.load();
    return ms > 0 ? absl::FromUnixMillis(ms) : absl::InfinitePast();
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> opened_ms_{0};
  std::thread thread_;
};

class BreakerTest : public ::testing::Test {
 protected:
  // Every worker stays in dispatch: these tests are about the breakers, and
  // the sick-worker test needs its sick worker to keep failing (ejecting it is
  // RobustnessTest's).
  BreakerTest() : fleet_({"--redis", redis_.url(), "--ejection-time", "0"}) {}

  void AddWorkers(int n, std::vector<std::string> extra_for_first = {}) {
    for (int i = 0; i < n; ++i) {
      std::vector<std::string> flags = {"--redis", redis_.url()};
      if (i == 0)
        flags.insert(flags.end(), extra_for_first.begin(),
                     extra_for_first.end());
      fleet_.AddWorker(absl::StrCat("w-", i), flags);
    }
  }

  void SetBreaker(const std::string& key, std::vector<std::string> flags) {
    std::vector<std::string> args = {"breakers", "set", key};
    args.insert(args.end(), flags.begin(), flags.end());
    CommandResult set = RunCommand(fleet_.Fetchctl(args));
    ASSERT_EQ(set.exit_code, 0) << set.err;
  }

  RedisServer redis_;
  HttpTestServer upstream_;
  Fleet fleet_;
};

// An upstream that is down from the start: the fleet trips the breaker, then
// sends it a handful of calls at most, then exactly one probe per half-open
// period, and once it is back the waiting requests all go through.
TEST_F(BreakerTest, DeadUpstreamIsCutOffProbedOnceAndRecovers) {
  AddWorkers(3);
  std::string key = UniqueKey("dead");
  SetBreaker(key, {"--open", "1s", "--max-open", "2s"});
  upstream_.SetDown(key, true);
  TripWatcher watcher(&redis_, key);
  std::atomic<int64_t> up_ms{0};
  std::thread healer([&] {
    // Back 3.5 s after the trip: probes at +1 s and +3 s fail, +5 s succeeds.
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (watcher.tripped() == absl::InfinitePast() && absl::Now() < deadline)
      absl::SleepFor(absl::Milliseconds(5));
    absl::SleepFor(absl::Milliseconds(3500));
    up_ms = absl::ToUnixMillis(absl::Now());
    upstream_.SetDown(key, false);
  });
  CommandResult run = RunCommand(
      fleet_.Fetchctl({"submit", "--rate", key + "=100/s", "--max-attempts",
                       "1", "--timeout", "10s", "--on-open=wait", "-"}),
      WriteTempFile(Lines(upstream_, key, 300)));
  healer.join();
  EXPECT_EQ(run.exit_code, 1) << run.err;  // the calls before the trip failed
  std::map<std::string, json> results = ById(ParseResults(run.out), 300);

  absl::Time trip = watcher.tripped();
  absl::Time up = absl::FromUnixMillis(up_ms);
  ASSERT_NE(trip, absl::InfinitePast());
  std::vector<absl::Time> calls = ArrivalsOf(upstream_, key);
  int before_trip = CountBetween(calls, absl::InfinitePast(), trip);
  int after_trip = CountBetween(calls, trip, trip + absl::Milliseconds(900));
  int probes = CountBetween(calls, trip + absl::Milliseconds(900), up);
  std::cerr << "calls before the trip " << before_trip
            << ", in the 900 ms after it " << after_trip
            << ", while down after that " << probes << ", in all "
            << calls.size() << "\n";
  // Every call made while it was down failed; every other request succeeded.
  int failed = 0;
  for (const auto& [id, r] : results) {
    if (r["ok"] == true) continue;
    ++failed;
    EXPECT_EQ(r["status"], 503) << r.dump();
  }
  EXPECT_EQ(failed, CountBetween(calls, absl::InfinitePast(), up));
  EXPECT_EQ(calls.size(), 300u);  // each request called once
  if (kTimed) {
    // Cut off fleet-wide: a handful of calls after the trip, whatever the
    // number of workers (calls already on the wire, and the ~1 ms it takes
    // the others to hear).
    EXPECT_LE(after_trip, 5);
    // One probe per half-open period: the probes at about +1 s and +3 s.
    EXPECT_EQ(probes, 2);
    std::vector<absl::Time> probe_times;
    for (absl::Time t : calls) {
      if (t > trip + absl::Milliseconds(900) && t <= up)
        probe_times.push_back(t);
    }
    for (size_t i = 1; i < probe_times.size(); ++i)
      EXPECT_GE(probe_times[i] - probe_times[i - 1], absl::Milliseconds(1900));
    // The first probe goes when the open period ends: the requests that had
    // queued for rate slots before the trip were handed back, not served
    // slots ahead of it (they were, once: 0.8 s late).
    if (!probe_times.empty()) {
      EXPECT_LT(probe_times[0] - trip, absl::Milliseconds(1300));
    }
  }
  EXPECT_EQ(HashField(redis_, key, "state"), "");  // closed: state cleared
  EXPECT_EQ(HashField(redis_, key, "trips"), "1");
  CommandResult list = RunCommand(fleet_.Fetchctl({"breakers", "list"}));
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find(key), std::string::npos) << list.out;
  // The coordinator logged each change once.
  std::string log = fleet_.coordinator()->Stderr();
  auto count = [&](const std::string& needle) {
    int n = 0;
    for (size_t at = log.find(needle); at != std::string::npos;
         at = log.find(needle, at + 1))
      ++n;
    return n;
  };
  EXPECT_EQ(count("breaker " + key + " opened"), 1) << log;
  EXPECT_EQ(count("breaker " + key + " closed"), 1) << log;
  if (kTimed) {
    EXPECT_EQ(count("breaker " + key + " half-open"), 3) << log;
    EXPECT_EQ(count("breaker " + key + " re-opened"), 2) << log;
  }
}

// The default policy: once the breaker is open, requests fail at once as
// circuit_open, without an attempt.
TEST_F(BreakerTest, OpenBreakerFailsRequestsFast) {
  AddWorkers(3);
  std::string key = UniqueKey("fast");
  upstream_.SetDown(key, true);
  absl::Time start = absl::Now();
  CommandResult run =
      RunCommand(fleet_.Fetchctl({"submit", "--rate", key + "=200/s", "-"}),
                 WriteTempFile(Lines(upstream_, key, 400)));
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(run.exit_code, 1) << run.err;
  std::map<std::string, json> results = ById(ParseResults(run.out), 400);
  int refused = 0;
  for (const auto& [id, r] : results) {
    if (r.value("error", "") != "circuit_open") continue;
    ++refused;
    EXPECT_LE(r["attempts"].get<int>(), 2) << r.dump();
    EXPECT_NE(r["error_message"].get<std::string>().find("circuit breaker"),
              std::string::npos);
  }
  std::vector<absl::Time> calls = ArrivalsOf(upstream_, key);
  std::cerr << refused << " refused, " << calls.size() << " calls, in " << took
            << "\n";
  EXPECT_GE(refused, 300);
  // Without the breaker: 400 requests x 3 attempts; with it, a few dozen.
  EXPECT_LE(calls.size(), 100u);
}

// One worker's own network is broken (it connects from an address the host
// does not have): its calls all fail, but with a quorum of two failing
// workers the fleet's breaker stays closed, and the healthy workers carry on.
// The control: with a quorum of one, the same fleet and settings trip it.
TEST_F(BreakerTest, OneSickWorkerDoesNotTripTheBreakerForAll) {
  AddWorkers(3, {"--source-address", "192.0.2.1"});
  std::string key = UniqueKey("healthy");
  // The sick worker's third of the calls, with its retries, fail: ~40% of
  // all, over a 30% threshold, so only the quorum keeps the breaker closed.
  SetBreaker(key, {"--failure-ratio", "0.3"});
  CommandResult run =
      RunCommand(fleet_.Fetchctl({"submit", "--rate", key + "=100/s", "-"}),
                 WriteTempFile(Lines(upstream_, key, 150)));
  EXPECT_EQ(run.exit_code, 1) << run.err;
  std::map<std::string, json> results = ById(ParseResults(run.out), 150);
  int ok = 0;
  int sick = 0;
  for (const auto& [id, r] : results) {
    if (r["worker"] == "w-0") {
      ++sick;
      EXPECT_EQ(r["error"], "connect") << r.dump();
    } else {
      ++ok;
      EXPECT_EQ(r["ok"], true) << r.dump();
    }
  }
  std::cerr << "sick worker " << sick << " failed, others " << ok << " ok\n";
  EXPECT_GE(sick, 20);
  EXPECT_GE(ok, 80);
  EXPECT_EQ(HashField(redis_, key, "trips"), "");  // never opened

  // Control: a quorum of one lets the sick worker trip it.
  std::string control = UniqueKey("control");
  SetBreaker(control, {"--failure-ratio", "0.3", "--quorum", "1"});
  run =
      RunCommand(fleet_.Fetchctl({"submit", "--rate", control + "=100/s", "-"}),
                 WriteTempFile(Lines(upstream_, control, 150)));
  EXPECT_EQ(HashField(redis_, control, "trips"), "1") << run.err;
}

// An upstream that goes down and comes back every second: the breaker trips,
// recovers and trips again (the window starts afresh when it closes), and
// every request still gets exactly one result. (Measured: 6 trips and 6
// recoveries in ~8 s.)
TEST_F(BreakerTest, FlappingUpstream) {
  AddWorkers(3);
  std::string key = UniqueKey("flappy");
  SetBreaker(key, {"--window", "2s", "--open", "300ms", "--max-open", "300ms"});
  std::atomic<bool> done{false};
  std::thread flapper([&] {
    bool down = true;
    while (!done) {
      upstream_.SetDown(key, down);
      down = !down;
      for (int i = 0; i < 100 && !done; ++i)
        absl::SleepFor(absl::Milliseconds(10));
    }
  });
  CommandResult run = RunCommand(
      fleet_.Fetchctl({"submit", "--rate", key + "=100/s", "--max-attempts",
                       "1", "--on-open=wait", "-"}),
      WriteTempFile(Lines(upstream_, key, 600)));
  done = true;
  flapper.join();
  std::map<std::string, json> results = ById(ParseResults(run.out), 600);
  int ok = 0;
  for (const auto& [id, r] : results) ok += r["ok"] == true ? 1 : 0;
  std::string log = fleet_.coordinator()->Stderr();
  int closed = 0;
  for (size_t at = log.find("breaker " + key + " closed");
       at != std::string::npos;
       at = log.find("breaker " + key + " closed", at + 1))
    ++closed;
  int64_t trips = 0;
  EXPECT_TRUE(absl::SimpleAtoi(HashField(redis_, key, "trips"), &trips));
  std::cerr << ok << " of 600 ok, " << trips << " trips, " << closed
            << " recoveries\n";
  EXPECT_GE(trips, 2);
  EXPECT_GE(closed, 1);
  // Half the time down, with a 2 s window: a trip needs half the window's
  // calls failed, so about half the calls fail (~300 seen); the requests
  // refused meanwhile wait and succeed in the next up phase, none is lost.
  EXPECT_GE(ok, 240);
}

}  // namespace
}  // namespace fetchfleet::testing
