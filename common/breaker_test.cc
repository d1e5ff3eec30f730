#include "common/breaker.h"

#include "gtest/gtest.h"

namespace fetchfleet {
namespace {

const absl::Time kStart = absl::UnixEpoch() + absl::Hours(1000);
const absl::Duration kProbeTtl = absl::Seconds(10);

AttemptOutcome Http(int status) {
  AttemptOutcome outcome;
  outcome.http_status = status;
  outcome.error =
      status >= 200 && status < 300 ? v1::ERROR_NONE : v1::ERROR_HTTP_STATUS;
  return outcome;
}

AttemptOutcome Error(v1::ErrorKind kind) {
  AttemptOutcome outcome;
  outcome.error = kind;
  return outcome;
}

TEST(ClassifyForBreaker, FailuresAreConnectTimeoutDnsAnd5xx) {
  BreakerConfig config;
  absl::Duration fast = absl::Milliseconds(5);
  EXPECT_EQ(ClassifyForBreaker(Http(200), fast, config), CallOutcome::kSuccess);
  EXPECT_EQ(ClassifyForBreaker(Http(404), fast, config), CallOutcome::kSuccess);
  EXPECT_EQ(ClassifyForBreaker(Http(500), fast, config), CallOutcome::kFailure);
  EXPECT_EQ(ClassifyForBreaker(Http(503), fast, config), CallOutcome::kFailure);
  EXPECT_EQ(ClassifyForBreaker(Http(429), fast, config), CallOutcome::kIgnored);
  EXPECT_EQ(ClassifyForBreaker(Error(v1::ERROR_CONNECT), fast, config),
            CallOutcome::kFailure);
  EXPECT_EQ(ClassifyForBreaker(Error(v1::ERROR_TIMEOUT), fast, config),
            CallOutcome::kFailure);
  EXPECT_EQ(ClassifyForBreaker(Error(v1::ERROR_DNS), fast, config),
            CallOutcome::kFailure);
  EXPECT_EQ(ClassifyForBreaker(Error(v1::ERROR_BLOCKED), fast, config),
            CallOutcome::kIgnored);
  EXPECT_EQ(ClassifyForBreaker(Error(v1::ERROR_CANCELLED), fast, config),
            CallOutcome::kIgnored);
}

TEST(ClassifyForBreaker, SlowCallsFailOnlyWhenConfigured) {
  BreakerConfig config;
  EXPECT_EQ(ClassifyForBreaker(Http(200), absl::Seconds(5), config),
            CallOutcome::kSuccess);
  config.slow_call = absl::Seconds(1);
  EXPECT_EQ(ClassifyForBreaker(Http(200), absl::Seconds(5), config),
            CallOutcome::kFailure);
  EXPECT_EQ(ClassifyForBreaker(Http(200), absl::Milliseconds(999), config),
            CallOutcome::kSuccess);
}

TEST(Breaker, NeedsMinCallsRatioAndQuorum) {
  Breaker breaker;
  // 9 failures from two workers: under min_calls.
  EXPECT_FALSE(breaker.Record(kStart, "a", 0, 5, 3));
  EXPECT_FALSE(breaker.Record(kStart, "b", 0, 4, 3));
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  // The tenth call trips it: 10 of 10 failed.
  EXPECT_TRUE(breaker.Record(kStart, "b", 0, 1, 3));
  EXPECT_EQ(breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(breaker.open_until(), kStart + absl::Seconds(5));
  EXPECT_EQ(breaker.trips(), 1);
  // Tripping is reported once.
  EXPECT_FALSE(breaker.Record(kStart, "c", 0, 5, 3));
}

TEST(Breaker, BelowRatioStaysClosed) {
  Breaker breaker;
  EXPECT_FALSE(breaker.Record(kStart, "a", 11, 0, 3));
  EXPECT_FALSE(breaker.Record(kStart, "b", 0, 10, 3));  // 10 of 21: 47.6%
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  EXPECT_TRUE(breaker.Record(kStart, "a", 0, 1, 3));  // 11 of 22: 50%
}

TEST(Breaker, OneSickWorkerDoesNotTripIt) {
  Breaker breaker;
  // Worker "sick" fails everything, the others succeed less often: 60 of 80
  // failed, but from one worker.
  EXPECT_FALSE(breaker.Record(kStart, "sick", 0, 60, 3));
  EXPECT_FALSE(breaker.Record(kStart, "a", 10, 0, 3));
  EXPECT_FALSE(breaker.Record(kStart, "b", 10, 0, 3));
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  // A second worker seeing failures makes it the fleet's view.
  EXPECT_TRUE(breaker.Record(kStart, "a", 0, 1, 3));
}

TEST(Breaker, QuorumIsCappedAtLiveWorkers) {
  Breaker breaker;
  EXPECT_TRUE(breaker.Record(kStart, "only", 0, 10, /*live_workers=*/1));
}

TEST(Breaker, WindowSlides) {
  Breaker breaker;
  EXPECT_FALSE(breaker.Record(kStart, "a", 0, 5, 3));
  EXPECT_FALSE(breaker.Record(kStart + absl::Seconds(9), "b", 0, 4, 3));
  EXPECT_EQ(breaker.Counts(kStart + absl::Seconds(9)).calls, 9);
  // Ten seconds later the first five have left the window, and so has "a".
  Breaker::Window later = breaker.Counts(kStart + absl::Seconds(10));
  EXPECT_EQ(later.calls, 4);
  EXPECT_EQ(later.failing_workers, 1);
  EXPECT_FALSE(breaker.Record(kStart + absl::Seconds(10), "b", 0, 6, 3));
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);  // quorum: only "b"
  EXPECT_TRUE(breaker.Record(kStart + absl::Seconds(10), "c", 0, 1, 3));
}

TEST(Breaker, OpenRefusesThenOneProbe) {
  Breaker breaker;
  ASSERT_TRUE(breaker.Record(kStart, "a", 0, 10, 1));
  Breaker::Admission refused =
      breaker.Admit(kStart + absl::Seconds(1), kProbeTtl);
  EXPECT_EQ(refused.verdict, Breaker::Verdict::kRefuse);
  EXPECT_EQ(refused.retry_at, kStart + absl::Seconds(5));
  absl::Time later = kStart + absl::Seconds(5);
  Breaker::Admission probe = breaker.Admit(later, kProbeTtl);
  EXPECT_EQ(probe.verdict, Breaker::Verdict::kProbe);
  EXPECT_EQ(breaker.state(), BreakerState::kHalfOpen);
  // Everyone else is refused while the probe is out.
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(breaker.Admit(later, kProbeTtl).verdict,
              Breaker::Verdict::kRefuse);
  }
  EXPECT_TRUE(breaker.ProbeDone(later, probe.probe_token, true));
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  EXPECT_EQ(breaker.Admit(later, kProbeTtl).verdict, Breaker::Verdict::kCall);
  // The window starts afresh: the old failures do not re-trip it.
  EXPECT_EQ(breaker.Counts(later).calls, 0);
}

TEST(Breaker, FailedProbesDoubleTheOpenPeriodUpToTheCap) {
  BreakerConfig config;
  config.max_open = absl::Seconds(30);
  Breaker breaker(config);
  absl::Time now = kStart;
  ASSERT_TRUE(breaker.Record(now, "a", 0, 10, 1));
  std::vector<absl::Duration> periods;
  for (int i = 0; i < 5; ++i) {
    now = breaker.open_until();
    Breaker::Admission probe = breaker.Admit(now, kProbeTtl);
    ASSERT_EQ(probe.verdict, Breaker::Verdict::kProbe);
    ASSERT_TRUE(breaker.ProbeDone(now, probe.probe_token, false));
    EXPECT_EQ(breaker.state(), BreakerState::kOpen);
    periods.push_back(breaker.open_until() - now);
  }
  EXPECT_EQ(periods,
            (std::vector<absl::Duration>{absl::Seconds(10), absl::Seconds(20),
                                         absl::Seconds(30), absl::Seconds(30),
                                         absl::Seconds(30)}));
  EXPECT_EQ(breaker.trips(), 1);
}

TEST(Breaker, LostProbeIsReplacedAfterItsTtl) {
  Breaker breaker;
  ASSERT_TRUE(breaker.Record(kStart, "a", 0, 10, 1));
  absl::Time now = breaker.open_until();
  Breaker::Admission first = breaker.Admit(now, kProbeTtl);
  ASSERT_EQ(first.verdict, Breaker::Verdict::kProbe);
  EXPECT_EQ(
      breaker.Admit(now + kProbeTtl - absl::Milliseconds(1), kProbeTtl).verdict,
      Breaker::Verdict::kRefuse);
  Breaker::Admission second = breaker.Admit(now + kProbeTtl, kProbeTtl);
  ASSERT_EQ(second.verdict, Breaker::Verdict::kProbe);
  // The first probe's late answer is stale.
  EXPECT_FALSE(breaker.ProbeDone(now + kProbeTtl, first.probe_token, true));
  EXPECT_EQ(breaker.state(), BreakerState::kHalfOpen);
  EXPECT_TRUE(breaker.ProbeDone(now + kProbeTtl, second.probe_token, true));
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
}

TEST(Breaker, ResetCloses) {
  Breaker breaker;
  ASSERT_TRUE(breaker.Record(kStart, "a", 0, 10, 1));
  breaker.Reset();
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  EXPECT_EQ(breaker.Admit(kStart, kProbeTtl).verdict, Breaker::Verdict::kCall);
}

TEST(BreakerConfig, ValidateNamesTheField) {
  BreakerConfig config;
  EXPECT_TRUE(config.Validate().ok());
  config.failure_ratio = 1.5;
  EXPECT_NE(config.Validate().message().find("failure-ratio"),
            std::string::npos);
  config = BreakerConfig{};
  config.max_open = absl::Seconds(1);
  EXPECT_NE(config.Validate().message().find("max-open"), std::string::npos);
}

TEST(BreakerConfig, ProtoRoundTripFillsDefaults) {
  v1::BreakerConfig proto;
  proto.set_min_calls(3);
  BreakerConfig config = BreakerConfig::FromProto(proto);
  EXPECT_EQ(config.min_calls, 3);
  EXPECT_EQ(config.window, absl::Seconds(10));
  EXPECT_EQ(BreakerConfig::FromProto(config.ToProto()), config);
}

TEST(RetryBudget, FloorThenRatioOfFirstAttempts) {
  RetryBudget budget;  // 20%, floor 10, 10 s
  absl::Time now = kStart;
  int allowed = 0;
  for (int i = 0; i < 50; ++i) allowed += budget.TryRetry(now);
  EXPECT_EQ(allowed, 10);  // the floor
  for (int i = 0; i < 100; ++i) budget.OnFirstAttempt(now);
  allowed = 0;
  for (int i = 0; i < 50; ++i) allowed += budget.TryRetry(now);
  EXPECT_EQ(allowed, 10);  // 20% of 100 = 20, 10 spent already
  // The window slides: ten seconds on, the old attempts and retries are gone.
  now += absl::Seconds(10);
  for (int i = 0; i < 1000; ++i) budget.OnFirstAttempt(now);
  allowed = 0;
  for (int i = 0; i < 500; ++i) allowed += budget.TryRetry(now);
  EXPECT_EQ(allowed, 200);
}

}  // namespace
}  // namespace fetchfleet
