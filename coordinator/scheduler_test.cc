#include "coordinator/scheduler.h"

#include <algorithm>
#include <set>

#include "coordinator/worker_input.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace fetchfleet::coordinator {
namespace {

class FakeChannel : public WorkerChannel {
 public:
  void Send(v1::CoordinatorMessage message) override {
    largest_batch = std::max<size_t>(largest_batch, message.assignments_size());
    for (const auto& a : message.assignments()) assignments.push_back(a);
    for (uint64_t id : message.cancelled()) cancelled.push_back(id);
  }
  void Close(const absl::Status& status) override { closed = status; }
  std::vector<v1::Assignment> assignments;
  std::vector<uint64_t> cancelled;
  std::optional<absl::Status> closed;
  size_t largest_batch = 0;
};

class FakeInput : public InputStream {
 public:
  void ReadMoreInput() override { ++reads; }
  int reads = 0;
};

// Feed sends `lines` into `job` as a Submit stream would, taking the job's
// input for `stream` first.
void Feed(Scheduler& scheduler, Job* job, std::vector<ParsedLine> lines,
          InputStream* stream) {
  if (job->input_owner() != stream) scheduler.TakeInput(job, stream);
  uint64_t raw = lines.size();
  scheduler.AddInput(job, std::move(lines), raw, stream);
}

// EndInput half-closes the job's input stream.
void EndInput(Scheduler& scheduler, Job* job) {
  scheduler.CloseInput(
      job, static_cast<InputStream*>(const_cast<void*>(job->input_owner())));
}

class RecordingListener : public JobListener {
 public:
  void OnJobProgress() override { ++calls; }
  int calls = 0;
};

std::vector<ParsedLine> Lines(int n, uint64_t first_index = 0) {
  std::vector<ParsedLine> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(ParseRequestLine("http://a.example/" + std::to_string(i),
                                   first_index + i + 1, first_index + i,
                                   v1::JobOptions()));
  }
  return out;
}

std::vector<ParsedLine> HostLines(const std::string& host, int n,
                                  uint64_t first_index) {
  std::vector<ParsedLine> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(ParseRequestLine("http://" + host + "/" + std::to_string(i),
                                   first_index + i + 1, first_index + i,
                                   v1::JobOptions()));
  }
  return out;
}

int CountHost(const std::vector<v1::Assignment>& assignments,
              const std::string& host) {
  int n = 0;
  for (const auto& a : assignments) {
    if (a.request().url().find("//" + host + "/") != std::string::npos) ++n;
  }
  return n;
}

v1::WorkerMessage Credit(uint32_t n) {
  v1::WorkerMessage m;
  m.set_credit(n);
  return m;
}

v1::WorkerMessage Complete(const std::vector<v1::Assignment>& done,
                           int status = 200) {
  v1::WorkerMessage m;
  for (const auto& a : done) {
    v1::Completion* c = m.add_completions();
    c->set_lease_id(a.lease_id());
    c->mutable_result()->set_id(a.request().id());
    c->mutable_result()->set_status(status);
    c->mutable_result()->set_ok(status / 100 == 2);
    c->mutable_result()->set_attempts(1);
  }
  m.set_credit(done.size());
  return m;
}

class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest() : scheduler_(&clock_, Options()) {}
  static SchedulerOptions Options() {
    SchedulerOptions o;
    o.job_limits.pending_low_water = 8;
    return o;
  }
  testing::FakeClock clock_;
  Scheduler scheduler_;
  FakeInput input_;
};

TEST_F(SchedulerTest, NeverSendsMoreThanTheCreditGranted) {
  FakeChannel w;
  uint64_t id = scheduler_.AddWorker(&w, "w1", "peer");
  Job* job = scheduler_.CreateJob(v1::JobOptions());
  Feed(scheduler_, job, Lines(5), &input_);
  EXPECT_TRUE(w.assignments.empty());
  scheduler_.OnWorkerMessage(id, Credit(3));
  EXPECT_EQ(w.assignments.size(), 3u);
  scheduler_.OnWorkerMessage(id, Credit(10));
  EXPECT_EQ(w.assignments.size(), 5u);
}

TEST_F(SchedulerTest, ResultsAreNumberedAndTheJobEndsWhenAllAreIn) {
  FakeChannel w;
  uint64_t id = scheduler_.AddWorker(&w, "w1", "peer");
  scheduler_.OnWorkerMessage(id, Credit(100));
  Job* job = scheduler_.CreateJob(v1::JobOptions());
  RecordingListener listener;
  job->AddListener(&listener);
  Feed(scheduler_, job, Lines(4), &input_);
  EndInput(scheduler_, job);
  ASSERT_EQ(w.assignments.size(), 4u);
  scheduler_.OnWorkerMessage(id,
                             Complete({w.assignments[0], w.assignments[1]}));
  EXPECT_FALSE(job->ended());
  scheduler_.OnWorkerMessage(
      id, Complete({w.assignments[2], w.assignments[3]}, 500));
  EXPECT_TRUE(job->ended());
  EXPECT_EQ(job->next_seq(), 5u);
  EXPECT_EQ(job->ResultAt(1).worker(), "w1");
  v1::JobStatus status = job->Status();
  EXPECT_EQ(status.ok(), 2u);
  EXPECT_EQ(status.failed(), 2u);
  EXPECT_GT(listener.calls, 0);
  job->RemoveListener(&listener);
}

TEST_F(SchedulerTest,
       DeadWorkersLeasesGoToAnotherWorkerAndLateResultsAreDropped) {
  FakeChannel w1, w2;
  uint64_t id1 = scheduler_.AddWorker(&w1, "w1", "p1");
  scheduler_.OnWorkerMessage(id1, Credit(10));
  Job* job = scheduler_.CreateJob(v1::JobOptions());
  Feed(scheduler_, job, Lines(3), &input_);
  EndInput(scheduler_, job);
  ASSERT_EQ(w1.assignments.size(), 3u);
  // w1 finishes one, then goes silent past the timeout.
  scheduler_.OnWorkerMessage(id1, Complete({w1.assignments[0]}));
  uint64_t id2 = scheduler_.AddWorker(&w2, "w2", "p2");
  clock_.Advance(absl::Seconds(5));
  scheduler_.OnWorkerMessage(id2, Credit(10));
  clock_.Advance(absl::Seconds(6));
  scheduler_.Sweep();
  ASSERT_TRUE(w1.closed.has_value());
  ASSERT_EQ(w2.assignments.size(), 2u);
  std::set<uint64_t> indexes = {w2.assignments[0].request().index(),
                                w2.assignments[1].request().index()};
  EXPECT_EQ(indexes, (std::set<uint64_t>{1, 2}));
  // w1's late results count for nothing.
  scheduler_.OnWorkerMessage(id1,
                             Complete({w1.assignments[1], w1.assignments[2]}));
  EXPECT_EQ(job->next_seq(), 2u);
  scheduler_.OnWorkerMessage(id2, Complete(w2.assignments));
  EXPECT_TRUE(job->ended());
  EXPECT_EQ(job->next_seq(), 4u);  // exactly one result per request
}

TEST_F(SchedulerTest, InputIsPacedByTheQueue) {
  Job* job = scheduler_.CreateJob(v1::JobOptions());
  Feed(scheduler_, job, Lines(4), &input_);
  EXPECT_EQ(input_.reads, 1);  // 4 < low water 8: read on
  Feed(scheduler_, job, Lines(8, 4), &input_);
  EXPECT_EQ(input_.reads, 1);  // 12 pending, no worker: paused
  FakeChannel w;
  uint64_t id = scheduler_.AddWorker(&w, "w1", "peer");
  scheduler_.OnWorkerMessage(id, Credit(6));
  EXPECT_EQ(input_.reads, 2);  // drained below low water: resumed
}

TEST_F(SchedulerTest, BadLinesBecomeResultsAndConcurrencyCapHolds) {
  v1::JobOptions options;
  options.set_concurrency(2);
  FakeChannel w;
  uint64_t id = scheduler_.AddWorker(&w, "w1", "peer");
  scheduler_.OnWorkerMessage(id, Credit(100));
  Job* job = scheduler_.CreateJob(options);
  std::vector<ParsedLine> lines = Lines(4);
  lines.push_back(ParseRequestLine("ftp://x/", 5, 4, options));
  Feed(scheduler_, job, std::move(lines), &input_);
  EXPECT_EQ(w.assignments.size(), 2u);
  EXPECT_EQ(job->next_seq(), 2u);
  EXPECT_EQ(job->ResultAt(1).error(), v1::ERROR_INVALID_REQUEST);
}

TEST(SchedulerOwnerTest, AnIdentitysJobsShareItsInFlightCap) {
  testing::FakeClock clock;
  SchedulerOptions options;
  options.user_limits.in_flight = 3;
  Scheduler scheduler(&clock, options);
  FakeInput input;
  FakeChannel w;
  uint64_t id = scheduler.AddWorker(&w, "w1", "peer");
  scheduler.OnWorkerMessage(id, Credit(100));
  Job* a = scheduler.CreateJob(v1::JobOptions(), "alice");
  Job* b = scheduler.CreateJob(v1::JobOptions(), "alice");
  Job* c = scheduler.CreateJob(v1::JobOptions(), "bob");
  Feed(scheduler, a, HostLines("a.example", 5, 0), &input);
  Feed(scheduler, b, HostLines("b.example", 5, 0), &input);
  Feed(scheduler, c, HostLines("c.example", 5, 0), &input);
  // alice's two jobs together hold 3; bob's are his own.
  EXPECT_EQ(w.assignments.size(), 6u);
  EXPECT_EQ(a->Status().in_flight() + b->Status().in_flight(), 3u);
  EXPECT_EQ(c->Status().in_flight(), 3u);
  EXPECT_EQ(CountHost(w.assignments, "c.example"), 3);
  // One of alice's results in: one more of hers goes out.
  std::vector<v1::Assignment> first;
  for (const v1::Assignment& x : w.assignments) {
    if (x.request().url().find("//c.example/") == std::string::npos) {
      first.push_back(x);
      break;
    }
  }
  ASSERT_EQ(first.size(), 1u);
  scheduler.OnWorkerMessage(id, Complete(first));
  EXPECT_EQ(a->Status().in_flight() + b->Status().in_flight(), 3u);
  EXPECT_EQ(w.assignments.size(), 7u);
}

TEST_F(SchedulerTest, CancelAnswersEveryRequestOnceAndTellsWorkers) {
  FakeChannel w;
  uint64_t id = scheduler_.AddWorker(&w, "w1", "peer");
  scheduler_.OnWorkerMessage(id, Credit(2));
  Job* job = scheduler_.CreateJob(v1::JobOptions());
  Feed(scheduler_, job, Lines(5), &input_);
  ASSERT_TRUE(scheduler_.CancelJob(job->id()).ok());
  EXPECT_EQ(w.cancelled.size(), 2u);
  EndInput(scheduler_, job);
  EXPECT_TRUE(job->ended());
  EXPECT_EQ(job->state(), v1::JOB_CANCELLED);
  EXPECT_EQ(job->next_seq(), 6u);
  // The worker's results after the cancel are dropped.
  scheduler_.OnWorkerMessage(id, Complete(w.assignments));
  EXPECT_EQ(job->next_seq(), 6u);
  EXPECT_TRUE(absl::IsNotFound(scheduler_.CancelJob("j-nope").status()));
}

TEST_F(SchedulerTest, DrainingWorkerGetsNothingAndReleasedWorkIsRequeued) {
  FakeChannel w1, w2;
  uint64_t id1 = scheduler_.AddWorker(&w1, "w1", "p1");
  scheduler_.OnWorkerMessage(id1, Credit(4));
  Job* job = scheduler_.CreateJob(v1::JobOptions());
  Feed(scheduler_, job, Lines(4), &input_);
  ASSERT_EQ(w1.assignments.size(), 4u);
  v1::WorkerMessage drain;
  drain.set_draining(true);
  drain.set_credit(10);
  drain.add_released(w1.assignments[3].lease_id());
  scheduler_.OnWorkerMessage(id1, drain);
  EXPECT_EQ(w1.assignments.size(), 4u);
  uint64_t id2 = scheduler_.AddWorker(&w2, "w2", "p2");
  scheduler_.OnWorkerMessage(id2, Credit(4));
  ASSERT_EQ(w2.assignments.size(), 1u);
  EXPECT_EQ(w2.assignments[0].request().index(), 3u);
}

TEST_F(SchedulerTest, UndeliveredResultsPauseDispatch) {
  SchedulerOptions o;
  o.job_limits.tail_results = 4;
  Scheduler scheduler(&clock_, o);
  FakeChannel w;
  uint64_t id = scheduler.AddWorker(&w, "w1", "peer");
  scheduler.OnWorkerMessage(id, Credit(100));
  Job* job = scheduler.CreateJob(v1::JobOptions());
  Feed(scheduler, job, Lines(10), &input_);
  ASSERT_EQ(w.assignments.size(), 4u);
  scheduler.OnWorkerMessage(id, Complete(w.assignments));
  EXPECT_EQ(w.assignments.size(), 4u);  // nobody read the 4 results: paused
  scheduler.ResultsDelivered(job, 4);
  EXPECT_EQ(w.assignments.size(), 8u);
}

// A key throttled at 1/s gets a few requests out at a time; the rest wait at
// the coordinator, holding no worker credit, and the job's other keys go on.
TEST_F(SchedulerTest, ThrottledKeyParksAndOtherKeysKeepFlowing) {
  scheduler_.SetLimits({{"slow.example", RateLimit{1, 1}}});
  FakeChannel w;
  uint64_t id = scheduler_.AddWorker(&w, "w1", "peer");
  scheduler_.OnWorkerMessage(id, Credit(100));
  Job* job = scheduler_.CreateJob(v1::JobOptions());
  Feed(scheduler_, job, HostLines("slow.example", 20, 0), &input_);
  Feed(scheduler_, job, HostLines("fast.example", 30, 20), &input_);
  EndInput(scheduler_, job);
  EXPECT_EQ(CountHost(w.assignments, "slow.example"), 8);  // the gate's cap
  EXPECT_EQ(CountHost(w.assignments, "fast.example"), 30);
  EXPECT_EQ(job->Status().pending(), 12u);  // parked count as pending
  v1::LimitTable listing = scheduler_.ListLimits();
  ASSERT_EQ(listing.limits_size(), 1);
  EXPECT_EQ(listing.limits(0).waiting(), 12);
  // Each slow result lets exactly one parked request out, in order.
  std::vector<v1::Assignment> slow;
  for (const auto& a : w.assignments) {
    if (CountHost({a}, "slow.example")) slow.push_back(a);
  }
  scheduler_.OnWorkerMessage(id, Complete({slow[0]}));
  EXPECT_EQ(CountHost(w.assignments, "slow.example"), 9);
  EXPECT_EQ(w.assignments.back().request().index(), 8u);
}

// A worker reports a 429 Retry-After: the key is closed for everyone until the
// pause runs out, and every worker is told.
TEST_F(SchedulerTest, ReportedPauseClosesTheKeyFleetWide) {
  FakeChannel w1, w2;
  uint64_t id1 = scheduler_.AddWorker(&w1, "w1", "p1");
  uint64_t id2 = scheduler_.AddWorker(&w2, "w2", "p2");
  scheduler_.OnWorkerMessage(id1, Credit(100));
  scheduler_.OnWorkerMessage(id2, Credit(100));
  v1::WorkerMessage paused;
  v1::KeyPause* pause = paused.add_paused();
  pause->set_key("a.example");
  pause->set_retry_after_ms(3000);
  scheduler_.OnWorkerMessage(id1, paused);
  Job* job = scheduler_.CreateJob(v1::JobOptions());
  Feed(scheduler_, job, Lines(10), &input_);
  EndInput(scheduler_, job);
  EXPECT_EQ(w1.assignments.size() + w2.assignments.size(), 0u);
  EXPECT_EQ(job->Status().pending(), 10u);
  clock_.Advance(absl::Milliseconds(2900));
  scheduler_.Sweep();
  EXPECT_EQ(w1.assignments.size() + w2.assignments.size(), 0u);
  clock_.Advance(absl::Milliseconds(200));
  scheduler_.Sweep();
  EXPECT_EQ(w1.assignments.size() + w2.assignments.size(), 10u);
}

// A limited key's requests are spread over the workers one at a time, also
// as they trickle out of the gate, so per-worker shares of R add up to R.
TEST_F(SchedulerTest, LimitedKeySpreadsEvenlyOverWorkers) {
  scheduler_.SetLimits({{"a.example", RateLimit{1, 1}}});
  FakeChannel w1, w2;
  uint64_t id1 = scheduler_.AddWorker(&w1, "w1", "p1");
  uint64_t id2 = scheduler_.AddWorker(&w2, "w2", "p2");
  scheduler_.OnWorkerMessage(id1, Credit(100));
  scheduler_.OnWorkerMessage(id2, Credit(100));
  Job* job = scheduler_.CreateJob(v1::JobOptions());
  Feed(scheduler_, job, Lines(20), &input_);
  EndInput(scheduler_, job);
  EXPECT_EQ(w1.assignments.size(), 4u);  // the gate's 8, half each
  EXPECT_EQ(w2.assignments.size(), 4u);
  // Released one by one, they keep alternating.
  for (int i = 0; i < 4; ++i) {
    scheduler_.OnWorkerMessage(id1, Complete({w1.assignments[i]}));
    scheduler_.OnWorkerMessage(id2, Complete({w2.assignments[i]}));
  }
  EXPECT_EQ(w1.assignments.size(), 8u);
  EXPECT_EQ(w2.assignments.size(), 8u);
}

// Dealing a limited key one request per round still keeps every message
// within the batch cap.
TEST_F(SchedulerTest, LimitedKeyBatchesStayWithinTheCap) {
  SchedulerOptions o = Options();
  o.max_batch = 4;
  Scheduler scheduler(&clock_, o);
  scheduler.SetLimits({{"a.example", RateLimit{100, 1}}});  // cap 201
  FakeChannel w;
  uint64_t id = scheduler.AddWorker(&w, "w1", "peer");
  scheduler.OnWorkerMessage(id, Credit(100));
  Job* job = scheduler.CreateJob(v1::JobOptions());
  Feed(scheduler, job, Lines(50), &input_);
  EXPECT_EQ(w.assignments.size(), 50u);
  EXPECT_LE(w.largest_batch, 4u);
}

TEST_F(SchedulerTest, CancelAnswersParkedRequestsToo) {
  scheduler_.SetLimits({{"a.example", RateLimit{0.1, 1}}});
  FakeChannel w;
  uint64_t id = scheduler_.AddWorker(&w, "w1", "peer");
  scheduler_.OnWorkerMessage(id, Credit(100));
  Job* job = scheduler_.CreateJob(v1::JobOptions());
  Feed(scheduler_, job, Lines(30), &input_);
  EndInput(scheduler_, job);
  ASSERT_EQ(w.assignments.size(), 8u);
  ASSERT_TRUE(scheduler_.CancelJob(job->id()).ok());
  EXPECT_TRUE(job->ended());
  EXPECT_EQ(job->next_seq(), 31u);  // every request answered once
  EXPECT_EQ(scheduler_.ListLimits().limits(0).waiting(), 0);
}

}  // namespace
}  // namespace fetchfleet::coordinator

namespace fetchfleet::coordinator {
namespace {

v1::FetchRequest Part(const std::string& host, uint64_t index) {
  return ParseRequestLine("http://" + host + "/part", index + 1, index,
                          v1::JobOptions())
      .request;
}

// Interactive (Aggregate) jobs go ahead of batch jobs, into the 1/16 of a
// worker's credit batch jobs leave free; once answered they are gone.
TEST_F(SchedulerTest, InteractiveJobsGoFirstIntoReservedCredit) {
  FakeChannel w;
  uint64_t id = scheduler_.AddWorker(&w, "w1", "peer");
  scheduler_.OnWorkerMessage(id, Credit(32));
  Job* batch = scheduler_.CreateJob(v1::JobOptions());
  Feed(scheduler_, batch, HostLines("batch.example", 100, 0), &input_);
  EXPECT_EQ(CountHost(w.assignments, "batch.example"), 30);  // 2 kept back
  Job* call = scheduler_.StartInteractive(
      {Part("user.example", 0), Part("recs.example", 1)}, v1::JobOptions());
  EXPECT_EQ(CountHost(w.assignments, "user.example"), 1);
  EXPECT_EQ(CountHost(w.assignments, "recs.example"), 1);
  EXPECT_EQ(scheduler_.interactive_jobs(), 1u);
  EXPECT_EQ(scheduler_.ListJobs().size(), 1u);  // not listed
  // Answered: the job ends, is forgotten, and batch work takes the credit.
  std::vector<v1::Assignment> parts(w.assignments.end() - 2,
                                    w.assignments.end());
  scheduler_.OnWorkerMessage(id, Complete(parts));
  ASSERT_TRUE(call->ended());
  EXPECT_EQ(scheduler_.interactive_jobs(), 0u);
  std::string call_id = call->id();
  scheduler_.ForgetJob(call);
  EXPECT_EQ(scheduler_.FindJob(call_id), nullptr);
  EXPECT_EQ(CountHost(w.assignments, "batch.example"), 30);  // reserve kept
}

// An interactive request parked behind its key's rate limit goes out before
// the batch requests parked there earlier.
TEST_F(SchedulerTest, ParkedInteractiveRequestsGoBeforeParkedBatchOnes) {
  scheduler_.SetLimits({{"api.example", RateLimit{1, 1}}});
  FakeChannel w;
  uint64_t id = scheduler_.AddWorker(&w, "w1", "peer");
  scheduler_.OnWorkerMessage(id, Credit(100));
  Job* batch = scheduler_.CreateJob(v1::JobOptions());
  Feed(scheduler_, batch, HostLines("api.example", 20, 0), &input_);
  ASSERT_EQ(CountHost(w.assignments, "api.example"), 8);  // the gate's cap
  scheduler_.StartInteractive({Part("api.example", 0)}, v1::JobOptions());
  ASSERT_EQ(CountHost(w.assignments, "api.example"), 8);  // parked too
  scheduler_.OnWorkerMessage(id, Complete({w.assignments[0]}));
  ASSERT_EQ(CountHost(w.assignments, "api.example"), 9);
  EXPECT_EQ(w.assignments.back().request().url(), "http://api.example/part");
}

}  // namespace
}  // namespace fetchfleet::coordinator

namespace fetchfleet::coordinator {
namespace {

// Cancelling a job answers each of its leases, and each answer used to run
// the job's end bookkeeping again: the job was listed as ended once per lease
// (a freed job read by the sweep that forgets old jobs) and an Aggregate
// call's count went below zero.
TEST_F(SchedulerTest, ACancelledJobEndsOnce) {
  FakeChannel w;
  uint64_t id = scheduler_.AddWorker(&w, "w1", "peer");
  scheduler_.OnWorkerMessage(id, Credit(100));
  Job* call = scheduler_.StartInteractive(
      {Part("a.example", 0), Part("b.example", 1), Part("c.example", 2)},
      v1::JobOptions());
  ASSERT_EQ(w.assignments.size(), 3u);
  ASSERT_TRUE(scheduler_.CancelJob(call->id()).ok());
  EXPECT_EQ(scheduler_.interactive_jobs(), 0u);
  scheduler_.ForgetJob(call);

  SchedulerOptions options = Options();
  options.ended_jobs_kept = 0;
  Scheduler scheduler(&clock_, options);
  FakeChannel w2;
  uint64_t id2 = scheduler.AddWorker(&w2, "w2", "peer");
  scheduler.OnWorkerMessage(id2, Credit(100));
  Job* job = scheduler.CreateJob(v1::JobOptions());
  Feed(scheduler, job, Lines(3), &input_);
  EndInput(scheduler, job);
  ASSERT_TRUE(scheduler.CancelJob(job->id()).ok());
  // Ended once, listed once (it was listed once per lease: 4 times).
  EXPECT_EQ(scheduler.ended_jobs(), 1u);
  scheduler.Sweep();  // forgets the job; a second listing would be freed
  scheduler.Sweep();
  EXPECT_TRUE(scheduler.ListJobs().empty());
  EXPECT_EQ(scheduler.ended_jobs(), 0u);
}

v1::WorkerMessage CompleteWithBody(const std::vector<v1::Assignment>& done,
                                   size_t body_bytes) {
  v1::WorkerMessage m = Complete(done);
  for (v1::Completion& c : *m.mutable_completions())
    c.mutable_result()->set_body(std::string(body_bytes, 'b'));
  return m;
}

// Issue 9: dispatch waited for held bytes < 64 MiB while eviction ran only
// above 64 MiB, so a tail holding exactly the limit in delivered results
// stalled the job forever. Around the bound: below, at and above it.
TEST_F(SchedulerTest, DeliveredResultsNeverStallDispatchAtTheByteBound) {
  for (size_t limit_units : {3, 4, 5}) {
    SchedulerOptions o;
    o.job_limits.tail_bytes = limit_units << 20;
    Scheduler scheduler(&clock_, o);
    FakeChannel w;
    uint64_t id = scheduler.AddWorker(&w, "w1", "peer");
    scheduler.OnWorkerMessage(id, Credit(1));
    v1::JobOptions options;
    options.set_concurrency(1);
    Job* job = scheduler.CreateJob(options);
    Feed(scheduler, job, Lines(12), &input_);
    EndInput(scheduler, job);
    for (int done = 0; done < 12; ++done) {
      ASSERT_EQ(w.assignments.size(), static_cast<size_t>(done + 1))
          << "stalled after " << done << " results, limit " << limit_units
          << " MiB, holding " << job->held_bytes() << " bytes";
      scheduler.OnWorkerMessage(
          id, CompleteWithBody({w.assignments.back()}, size_t{1} << 20));
      scheduler.ResultsDelivered(job, job->next_seq() - 1);
      if (done == 11) break;
    }
    EXPECT_TRUE(job->ended());
    EXPECT_LE(job->held_bytes(), o.job_limits.tail_bytes);
  }
}

// Undelivered bytes still pause dispatch, and delivering resumes it.
TEST_F(SchedulerTest, UndeliveredBytesPauseDispatchUntilRead) {
  SchedulerOptions o;
  o.job_limits.tail_bytes = 2 << 20;
  Scheduler scheduler(&clock_, o);
  FakeChannel w;
  uint64_t id = scheduler.AddWorker(&w, "w1", "peer");
  scheduler.OnWorkerMessage(id, Credit(2));
  Job* job = scheduler.CreateJob(v1::JobOptions());
  Feed(scheduler, job, Lines(6), &input_);
  ASSERT_EQ(w.assignments.size(), 2u);
  scheduler.OnWorkerMessage(id, CompleteWithBody(w.assignments, 1 << 20));
  EXPECT_EQ(w.assignments.size(), 2u);  // 2 MiB nobody read
  EXPECT_EQ(job->undelivered_bytes(), size_t{2} << 20);
  scheduler.ResultsDelivered(job, 1);
  EXPECT_EQ(w.assignments.size(), 4u);
}

// fetchctl top: each worker's failed results are counted, beside done.
TEST_F(SchedulerTest, ListWorkersCountsEachWorkersFailedResults) {
  FakeChannel w1, w2;
  uint64_t id1 = scheduler_.AddWorker(&w1, "w1", "p1");
  uint64_t id2 = scheduler_.AddWorker(&w2, "w2", "p2");
  scheduler_.OnWorkerMessage(id1, Credit(3));
  scheduler_.OnWorkerMessage(id2, Credit(3));
  Job* job = scheduler_.CreateJob(v1::JobOptions());
  Feed(scheduler_, job, Lines(6), &input_);
  ASSERT_EQ(w1.assignments.size(), 3u);
  ASSERT_EQ(w2.assignments.size(), 3u);
  scheduler_.OnWorkerMessage(id1, Complete({w1.assignments[0]}));
  scheduler_.OnWorkerMessage(
      id1, Complete({w1.assignments[1], w1.assignments[2]}, 503));
  scheduler_.OnWorkerMessage(id2, Complete(w2.assignments));
  std::map<std::string, std::pair<uint64_t, uint64_t>> seen;
  for (const v1::WorkerInfo& info : scheduler_.ListWorkers())
    seen[info.name()] = {info.done(), info.failed()};
  EXPECT_EQ(seen["w1"], std::make_pair(uint64_t{3}, uint64_t{2}));
  EXPECT_EQ(seen["w2"], std::make_pair(uint64_t{3}, uint64_t{0}));
}

// Issue 9: a worker's numbers are its word, bounded; a result's identity is
// the lease's.
TEST_F(SchedulerTest, WorkerMessagesAreBoundedAndResultsStampedFromTheLease) {
  FakeChannel w1, w2;
  uint64_t id1 = scheduler_.AddWorker(&w1, "w1", "p1");
  uint64_t id2 = scheduler_.AddWorker(&w2, "w2", "p2");
  v1::WorkerMessage greedy = Credit(4000000000u);
  scheduler_.OnWorkerMessage(id1, greedy);
  scheduler_.OnWorkerMessage(id1, greedy);
  for (const v1::WorkerInfo& info : scheduler_.ListWorkers()) {
    if (info.name() == "w1") {
      EXPECT_EQ(info.credit(), kMaxWorkerCredit);
    }
  }
  // A pause of 2^64-1 ms is a pause of at most a minute.
  v1::WorkerMessage paused;
  v1::KeyPause* pause = paused.add_paused();
  pause->set_key("a.example");
  pause->set_retry_after_ms(~uint64_t{0});
  scheduler_.OnWorkerMessage(id2, paused);
  Job* job = scheduler_.CreateJob(v1::JobOptions());
  RecordingListener listener;
  job->AddListener(&listener);
  Feed(scheduler_, job, Lines(2), &input_);
  EndInput(scheduler_, job);
  EXPECT_TRUE(w1.assignments.empty());
  for (int s = 0; s < 61; ++s) {
    clock_.Advance(absl::Seconds(1));
    scheduler_.OnWorkerMessage(id1, Credit(0));
    scheduler_.OnWorkerMessage(id2, Credit(0));
    scheduler_.Sweep();
  }
  ASSERT_EQ(w1.assignments.size(), 2u);
  // w2 completes w1's lease: dropped. w1 forges the id, url and worker name
  // and inflates its numbers: stamped and clamped.
  scheduler_.OnWorkerMessage(id2, Complete({w1.assignments[0]}));
  EXPECT_EQ(scheduler_.dropped_results(), 1u);
  v1::WorkerMessage forged = Complete(w1.assignments);
  for (v1::Completion& c : *forged.mutable_completions()) {
    v1::FetchResult* r = c.mutable_result();
    r->set_id("someone-else");
    r->set_url("http://evil.example/");
    r->set_worker("w9");
    r->set_attempts(1000);
    r->set_latency_ms(-5);
    r->set_body(std::string(2 << 20, 'x'));  // over the job's 1 MiB cap
  }
  scheduler_.OnWorkerMessage(id1, forged);
  ASSERT_TRUE(job->ended());
  for (uint64_t seq = 1; seq <= 2; ++seq) {
    const v1::FetchResult& r = job->ResultAt(seq);
    EXPECT_EQ(r.id(), std::to_string(r.index() + 1));
    EXPECT_EQ(r.url(), "http://a.example/" + std::to_string(r.index()));
    EXPECT_EQ(r.worker(), "w1");
    EXPECT_EQ(r.attempts(), 3u);
    EXPECT_EQ(r.latency_ms(), 0);
    EXPECT_EQ(r.body().size(), size_t{1} << 20);
    EXPECT_TRUE(r.truncated());
  }
  // A breaker event with a bad key is dropped; a huge open period clamped.
  v1::WorkerMessage events;
  events.add_breaker_events()->set_key("bad key");
  v1::BreakerEvent* open = events.add_breaker_events();
  open->set_key("a.example");
  open->set_state(v1::BREAKER_OPEN);
  open->set_open_ms(~uint64_t{0});
  scheduler_.OnWorkerMessage(id1, events);
  ASSERT_EQ(scheduler_.breaker_reports().reports().size(), 1u);
  EXPECT_EQ(
      scheduler_.breaker_reports().reports().at("a.example").event.open_ms(),
      kMaxBreakerOpenMs);
}

// Issue 9: a lease lasted timeout + 60 s per attempt plus 30 s; it now follows
// the plan: 3 attempts of 3 s, backoff ceilings 0.1 + 0.2 s, 10 s of slack.
TEST_F(SchedulerTest, LeaseDeadlineFollowsTheAttemptPlan) {
  FakeChannel w;
  uint64_t id = scheduler_.AddWorker(&w, "w1", "peer");
  scheduler_.OnWorkerMessage(id, Credit(10));
  v1::JobOptions options;
  options.set_timeout_ms(3000);
  Job* job = scheduler_.CreateJob(options);
  std::vector<ParsedLine> lines;
  lines.push_back(ParseRequestLine("http://a.example/0", 1, 0, job->options()));
  Feed(scheduler_, job, std::move(lines), &input_);
  ASSERT_EQ(w.assignments.size(), 1u);
  for (int s = 0; s < 19; ++s) {
    clock_.Advance(absl::Seconds(1));
    scheduler_.OnWorkerMessage(id, Credit(0));  // heartbeats
  }
  clock_.Advance(absl::Milliseconds(299));
  scheduler_.Sweep();
  EXPECT_TRUE(w.cancelled.empty());
  clock_.Advance(absl::Milliseconds(2));
  scheduler_.Sweep();
  EXPECT_EQ(w.cancelled.size(), 1u);
}

// Issue 9: a worker that heartbeats but never completes held 64 requests past
// 90 s, and its requeued leases were dealt to it again. Now its leases expire
// on plan, it is ejected, and the healthy worker gets them.
TEST_F(SchedulerTest, AWorkerThatNeverAnswersIsEjectedAndItsWorkMoves) {
  FakeChannel stuck, healthy;
  uint64_t bad = scheduler_.AddWorker(&stuck, "stuck", "p1");
  // 68: batch work leaves 1/16 of a worker's credit to the interactive lane.
  scheduler_.OnWorkerMessage(bad, Credit(68));
  v1::JobOptions options;
  options.set_timeout_ms(3000);
  options.set_max_attempts(1);
  Job* job = scheduler_.CreateJob(options);
  std::vector<ParsedLine> lines;
  for (int i = 0; i < 64; ++i) {
    lines.push_back(ParseRequestLine("http://a.example/" + std::to_string(i),
                                     i + 1, i, job->options()));
  }
  Feed(scheduler_, job, std::move(lines), &input_);
  EndInput(scheduler_, job);
  ASSERT_EQ(stuck.assignments.size(), 64u);
  uint64_t good = scheduler_.AddWorker(&healthy, "healthy", "p2");
  scheduler_.OnWorkerMessage(good, Credit(68));
  for (int s = 0; s < 14; ++s) {
    clock_.Advance(absl::Seconds(1));
    scheduler_.OnWorkerMessage(bad, Credit(0));  // heartbeats, nothing else
    scheduler_.OnWorkerMessage(good, Credit(0));
    scheduler_.Sweep();
  }
  EXPECT_EQ(stuck.cancelled.size(), 64u);
  EXPECT_EQ(stuck.assignments.size(), 64u);  // nothing dealt to it again
  ASSERT_EQ(healthy.assignments.size(), 64u);
  bool listed = false;
  for (const v1::WorkerInfo& info : scheduler_.ListWorkers()) {
    if (info.name() != "stuck") continue;
    listed = true;
    EXPECT_TRUE(info.ejected());
    EXPECT_NE(info.ejected_reason().find("held 64 lease(s)"),
              std::string::npos);
  }
  EXPECT_TRUE(listed);
  scheduler_.OnWorkerMessage(good, Complete(healthy.assignments));
  EXPECT_TRUE(job->ended());
  EXPECT_EQ(job->Status().ok(), 64u);
}

// Issue 9: a coordinator with connected workers and no work stops at once.
TEST_F(SchedulerTest, ShutdownClosesIdleWorkersAndBusyOnesWhenDone) {
  FakeChannel idle, busy;
  scheduler_.AddWorker(&idle, "idle", "p1");
  uint64_t b = scheduler_.AddWorker(&busy, "busy", "p2");
  scheduler_.OnWorkerMessage(b, Credit(1));
  Job* job = scheduler_.CreateJob(v1::JobOptions());
  Feed(scheduler_, job, Lines(2), &input_);
  ASSERT_EQ(busy.assignments.size(), 1u);
  scheduler_.BeginShutdown();
  ASSERT_TRUE(idle.closed.has_value());
  EXPECT_EQ(idle.closed->code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(busy.closed.has_value());
  scheduler_.OnWorkerMessage(b, Complete(busy.assignments));
  EXPECT_EQ(busy.assignments.size(), 1u);  // nothing new while shutting down
  EXPECT_TRUE(busy.closed.has_value());
  EXPECT_TRUE(scheduler_.ListWorkers().empty());
}

}  // namespace
}  // namespace fetchfleet::coordinator
