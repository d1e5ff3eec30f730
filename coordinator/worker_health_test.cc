#include "coordinator/worker_health.h"

#include "gtest/gtest.h"

namespace fetchfleet::coordinator {
namespace {

v1::FetchResult Reached(int status = 200) {
  v1::FetchResult r;
  r.set_status(status);
  if (status / 100 != 2) r.set_error(v1::ERROR_HTTP_STATUS);
  return r;
}

v1::FetchResult Failed(v1::ErrorKind kind = v1::ERROR_CONNECT) {
  v1::FetchResult r;
  r.set_error(kind);
  return r;
}

class WorkerHealthTest : public ::testing::Test {
 protected:
  WorkerHealthTest() {
    for (uint64_t w = 1; w <= 3; ++w)
      health_.AddWorker(w, "w" + std::to_string(w));
  }
  void Feed(uint64_t worker, int n, const v1::FetchResult& result) {
    for (int i = 0; i < n; ++i) health_.OnResult(worker, result, now_);
  }
  absl::Time now_ = absl::UnixEpoch() + absl::Hours(1);
  WorkerHealth health_;
};

TEST_F(WorkerHealthTest, ClassifiesWhatSaysSomethingAboutTheWorker) {
  EXPECT_EQ(ClassifyForHealth(Reached()), ResultClass::kReached);
  EXPECT_EQ(ClassifyForHealth(Reached(503)), ResultClass::kReached);
  EXPECT_EQ(ClassifyForHealth(Failed(v1::ERROR_TIMEOUT)),
            ResultClass::kTransportFailure);
  EXPECT_EQ(ClassifyForHealth(Failed(v1::ERROR_BLOCKED)),
            ResultClass::kNeither);
  EXPECT_EQ(ClassifyForHealth(Failed(v1::ERROR_CIRCUIT_OPEN)),
            ResultClass::kNeither);
}

TEST_F(WorkerHealthTest, AWorkerFailingAloneIsEjectedThenOnProbation) {
  Feed(1, 30, Failed());
  Feed(2, 30, Reached());
  Feed(3, 30, Reached(500));  // upstream errors are the upstream's
  std::vector<uint64_t> changed = health_.Evaluate(now_);
  ASSERT_EQ(changed, std::vector<uint64_t>{1});
  EXPECT_TRUE(health_.Ejected(1, now_));
  EXPECT_FALSE(health_.MayTake(1, 0, now_));
  EXPECT_TRUE(health_.MayTake(2, 1000, now_));
  v1::WorkerInfo info;
  health_.Fill(1, now_, 0, &info);
  EXPECT_TRUE(info.ejected());
  EXPECT_NE(info.ejected_reason().find("30 of its 30 results"),
            std::string::npos)
      << info.ejected_reason();
  EXPECT_EQ(info.ejected_until_unix_ms(), 30000);

  // The period ends: probation, a few leases at a time.
  now_ += absl::Seconds(31);
  EXPECT_EQ(health_.Evaluate(now_), std::vector<uint64_t>{1});
  EXPECT_FALSE(health_.Ejected(1, now_));
  EXPECT_TRUE(health_.MayTake(1, 15, now_));
  EXPECT_FALSE(health_.MayTake(1, 16, now_));
  Feed(1, 8, Reached());  // it proves healthy
  EXPECT_TRUE(health_.MayTake(1, 1000, now_));
}

TEST_F(WorkerHealthTest, FailingOnProbationEjectsForTwiceAsLong) {
  Feed(1, 30, Failed());
  Feed(2, 30, Reached());
  health_.Evaluate(now_);
  now_ += absl::Seconds(31);
  health_.Evaluate(now_);
  Feed(1, 16, Failed());
  Feed(2, 30, Reached());
  EXPECT_EQ(health_.Evaluate(now_), std::vector<uint64_t>{1});
  EXPECT_TRUE(health_.Ejected(1, now_ + absl::Seconds(59)));
  EXPECT_FALSE(health_.Ejected(1, now_ + absl::Seconds(61)));
}

TEST_F(WorkerHealthTest, AFleetWideOutageEjectsNobody) {
  Feed(1, 30, Failed());
  Feed(2, 30, Failed(v1::ERROR_TIMEOUT));
  Feed(3, 25, Failed());
  Feed(3, 5, Reached());
  EXPECT_TRUE(health_.Evaluate(now_).empty());
}

TEST_F(WorkerHealthTest, TooFewResultsDecideNothing) {
  Feed(1, 19, Failed());
  Feed(2, 100, Reached());
  EXPECT_TRUE(health_.Evaluate(now_).empty());
}

TEST_F(WorkerHealthTest, OldResultsLeaveTheWindow) {
  Feed(1, 30, Failed());
  now_ += absl::Seconds(11);
  Feed(2, 30, Reached());
  EXPECT_TRUE(health_.Evaluate(now_).empty());
}

TEST_F(WorkerHealthTest, AStalledWorkerIsEjectedASlowOneIsNot) {
  absl::Time dealt = now_;
  now_ += absl::Seconds(20);
  // w1 completed nothing since the leases were dealt: stalled.
  health_.OnLeasesExpired(1, 64, dealt, now_);
  // w2 is slow: some leases expired, but it completes other requests.
  Feed(2, 1, Reached());
  health_.OnLeasesExpired(2, 3, dealt, now_);
  EXPECT_EQ(health_.Evaluate(now_), std::vector<uint64_t>{1});
  v1::WorkerInfo info;
  health_.Fill(1, now_, 0, &info);
  EXPECT_NE(info.ejected_reason().find("held 64 lease(s) past their deadlines"),
            std::string::npos)
      << info.ejected_reason();
}

TEST_F(WorkerHealthTest, AtMostHalfTheWorkersAreEjected) {
  WorkerHealth health;
  health.AddWorker(1, "a");
  health.AddWorker(2, "b");
  health.OnLeasesExpired(1, 1, now_ - absl::Seconds(1), now_);
  health.OnLeasesExpired(2, 1, now_ - absl::Seconds(1), now_);
  EXPECT_EQ(health.Evaluate(now_).size(), 1u);
  WorkerHealth alone;
  alone.AddWorker(1, "a");
  alone.OnLeasesExpired(1, 1, now_ - absl::Seconds(1), now_);
  EXPECT_TRUE(alone.Evaluate(now_).empty());  // never the last one
}

TEST_F(WorkerHealthTest, ReconnectingKeepsTheEjection) {
  health_.OnLeasesExpired(1, 5, now_ - absl::Seconds(1), now_);
  health_.Evaluate(now_);
  ASSERT_TRUE(health_.Ejected(1, now_));
  health_.RemoveWorker(1);
  health_.AddWorker(7, "w1");
  EXPECT_TRUE(health_.Ejected(7, now_));
}

}  // namespace
}  // namespace fetchfleet::coordinator
