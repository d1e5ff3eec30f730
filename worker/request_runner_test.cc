#include "worker/request_runner.h"

#include <algorithm>
#include <map>

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
        runner_(&loop_, &fetcher_, &limiter_, FastBackoff(), "w-test",
                [this](uint64_t lease_id, v1::FetchResult result) {
                  results_[lease_id] = std::move(result);
                  if (results_.size() == expected_) loop_.Stop();
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

  void Run(
      const std::vector<std::pair<std::string, uint32_t>>& urls_and_attempts) {
    expected_ = urls_and_attempts.size();
    loop_.Post([&] {
      uint64_t lease = 1;
      for (const auto& [url, attempts] : urls_and_attempts) {
        v1::Assignment a;
        a.set_lease_id(lease++);
        a.mutable_request()->set_url(url);
        a.mutable_request()->set_id(absl::StrCat("r", lease - 1));
        a.mutable_request()->set_method("GET");
        a.mutable_request()->set_rate_key("local");
        a.mutable_request()->set_max_attempts(attempts);
        a.mutable_request()->set_timeout_ms(5000);
        runner_.Add(std::move(a));
      }
    });
    loop_.Run();
  }

  testing::HttpTestServer server_;
  EgressPolicy policy_;
  EventLoop loop_;
  CurlFetcher fetcher_;
  LimitTable limits_;
  LocalRateLimiter limiter_;
  RequestRunner runner_;
  std::map<uint64_t, v1::FetchResult> results_;
  size_t expected_ = 0;
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

}  // namespace
}  // namespace fetchfleet::worker
