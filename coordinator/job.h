// Job: one submitted job list on the coordinator. It owns the job's queue of
// requests waiting for a worker (pending), its counters, and the tail of its
// result stream: results numbered by seq and held until delivered, so a client
// that reconnects can `watch --from SEQ`.
//
// Memory stays flat whatever the job's size: input is read only while `pending`
// is short, and work is dispatched only while the undelivered part of the tail
// has room, so a slow or absent client pauses its job instead of growing the
// coordinator.
//
// Loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/latency_histogram.h"
#include "coordinator/input_ledger.h"
#include "coordinator/job_store.h"
#include "coordinator/job_trace.h"
#include "coordinator/user_quota.h"
#include "proto/fetchfleet.pb.h"
#include "proto/job_store.pb.h"

namespace fetchfleet::coordinator {

// JobListener is told when a job has new results or has ended (a Submit or
// Watch stream).
class JobListener {
 public:
  virtual ~JobListener() = default;
  virtual void OnJobProgress() = 0;
};

class Job;

// JobJournal is told when a durable job changed, so that its progress goes
// into the store's next commit (job_journal.h).
class JobJournal {
 public:
  virtual ~JobJournal() = default;
  virtual void Touched(Job* job) = 0;
};

// DurableMark: how far a job's changes had gone when a commit was queued;
// once it is durable, so is all of that.
struct DurableMark {
  uint64_t seq = 0;    // results through this seq
  uint64_t lines = 0;  // raw input lines
  uint64_t index = 0;  // requests (their input rows)
  bool input_closed = false;
  bool cancelled = false;
  bool ended = false;
};

// JobLimits bound what a job holds in the coordinator.
struct JobLimits {
  size_t pending_low_water = 4096;  // read more input while fewer are pending
  size_t tail_results = 65536;      // results held for delivery and resume
  size_t tail_bytes = 64 << 20;     // and their body bytes
  // Requests held back by their key's rate limit (KeyGate). They do not count
  // against pending_low_water, so a throttled key does not stop the input
  // that follows it; this caps them instead.
  size_t parked_max = 65536;
};

class Job {
 public:
  Job(std::string id, v1::JobOptions options, JobLimits limits,
      const Clock* clock, int64_t created_unix_ms);
  // Restore rebuilds a job from its store copy: counters and held results;
  // its waiting requests are loaded from the store as it runs.
  static std::unique_ptr<Job> Restore(const RecoveredJob& recovered,
                                      JobLimits limits, const Clock* clock,
                                      JobStore* store, JobJournal* journal);

  const std::string& id() const { return id_; }
  // Who submitted it (the authenticated name; "anonymous" on an open
  // coordinator).
  const std::string& owner() const { return owner_; }
  void set_owner(std::string owner) { owner_ = std::move(owner); }
  // The in-flight budget shared by the owner's batch jobs (none: no cap).
  void set_owner_budget(std::shared_ptr<InFlightBudget> budget) {
    owner_budget_ = std::move(budget);
  }
  ~Job();
  // Interactive: an Aggregate call's parts, dispatched ahead of batch jobs.
  bool interactive() const { return interactive_; }
  void set_interactive() { interactive_ = true; }
  const v1::JobOptions& options() const { return options_; }
  // The job's trace context and span (README, "Tracing").
  const JobTrace& trace() const { return trace_; }
  void set_trace(JobTrace trace) { trace_ = std::move(trace); }
  v1::JobState state() const { return state_; }
  // ended: every input line has its result and no more will come. A
  // cancelled job is CANCELLED at once but ends only when the last of its
  // lines (some perhaps still in the store) has its `cancelled` result.
  bool ended() const { return ended_at_ != absl::InfiniteFuture(); }
  // TakeEnd: true once, the first time it is asked after the job ended.
  bool TakeEnd() {
    if (!ended() || end_taken_) return false;
    end_taken_ = true;
    return true;
  }

  // --- durability (README, "Durable jobs")
  // SetStore makes the job durable: every change goes to `store`, and
  // `journal` hears of it. Set before any input.
  void SetStore(JobStore* store, JobJournal* journal);
  bool durable() const { return store_ != nullptr; }
  // WriteChanges queues what changed since its last call as store writes
  // (input answered, new results, the progress row), for the next commit.
  void WriteChanges();
  // The record and progress the store keeps.
  store::v1::JobRecord Record() const;
  store::v1::JobProgress Progress() const;
  DurableMark Mark() const;
  // OnDurable: the changes up to `mark` are in the store.
  void OnDurable(const DurableMark& mark);
  // What may be told to clients: results through deliverable_seq(), the job
  // itself once its record is durable, the input's end once that is (all of
  // it at once without a store).
  uint64_t deliverable_seq() const {
    return store_ == nullptr ? next_seq_ - 1 : durable_seq_;
  }
  bool record_durable() const { return store_ == nullptr || record_durable_; }
  bool input_close_durable() const {
    return input_closed_ && (store_ == nullptr || input_close_durable_);
  }
  bool end_durable() const {
    return ended() && (store_ == nullptr || end_durable_);
  }
  // WhenCancelDurable runs `done` once the job's cancellation is in the store
  // (at once without a store), so that a cancel is confirmed only when a
  // restart would keep it.
  void WhenCancelDurable(absl::AnyInvocable<void()> done);
  uint64_t durable_lines() const {
    return store_ == nullptr ? lines_received_ : durable_lines_;
  }
  // Lines received and not yet durable: a durable job's input is paced by
  // these, not by its queue (it spools).
  uint64_t undurable_lines() const { return lines_received_ - durable_lines(); }

  // --- input
  // AddRequest queues a request of a job that is never durable (an
  // Aggregate call's part).
  void AddRequest(v1::FetchRequest request);
  // CountInput counts a line that is answered without being queued (tests).
  void CountInput() {
    ++total_;
    loaded_index_ = ++next_index_;
  }
  // AcceptLine takes input line `line.index` (a request, or a bad line's
  // result). A request goes to the queue while the queue is short and nothing
  // older waits in the store; else (durable jobs only) it waits in the store
  // until LoadSpooled brings it in.
  void AcceptLine(SpooledLine line);
  // CountLines counts raw input lines received (blank ones included), the
  // unit a client resumes its input in.
  void CountLines(uint64_t n) {
    lines_received_ += n;
    if (n > 0) Touch();  // blank lines too must become durable
  }
  uint64_t lines_received() const { return lines_received_; }
  // The index the next request line gets.
  uint64_t next_index() const { return next_index_; }
  void CloseInput();
  bool input_closed() const { return input_closed_; }
  // WantsInput: more input may be read. Without a store: few requests waiting,
  // and the tail has room for the results that bad lines produce without
  // dispatch. With one: the lines not yet durable are few (the caller also
  // checks the store itself).
  bool WantsInput() const;
  // Spooled input: requests in the store not yet in memory.
  bool WantsLoad() const;
  // BeginLoad returns the index range [from, upto) to read (WantsLoad first).
  std::pair<uint64_t, uint64_t> BeginLoad();
  // Spooled requests are brought in this many at a time.
  static constexpr size_t kLoadBatch = 2048;
  // EndLoad queues what the store returned for that range (at most `max`);
  // FailLoad: the read failed, the range is read again later.
  void EndLoad(std::vector<SpooledLine> lines, uint64_t upto, size_t max);
  void FailLoad() { loading_ = false; }
  uint64_t spooled() const { return next_index_ - loaded_index_; }
  // The input's owner: the one Submit stream whose lines count (a resumed
  // stream takes over from a broken one).
  const void* input_owner() const { return input_owner_; }
  void set_input_owner(const void* owner, absl::Time now) {
    input_owner_ = owner;
    if (owner == nullptr) orphaned_at_ = now;
  }
  // When the input lost its stream (InfiniteFuture while it has one).
  absl::Time orphaned_at() const {
    return input_owner_ != nullptr ? absl::InfiniteFuture() : orphaned_at_;
  }
  uint64_t undelivered() const { return next_seq_ - 1 - delivered_seq_; }
  uint64_t delivered_seq() const { return delivered_seq_; }
  size_t parked_count() const { return parked_count_; }
  // Requests waiting for a worker that are not parked, and those leased: what
  // Status() says without building it (a metrics census reads these per job).
  size_t unparked_pending_count() const { return pending_.size(); }
  uint64_t in_flight() const { return in_flight_; }
  size_t undelivered_bytes() const { return undelivered_bytes_; }
  size_t held_bytes() const { return tail_bytes_; }

  // --- dispatch
  // CanDispatch: work is waiting, the job's concurrency cap has room, and the
  // results no client has received yet are under the tail's limits.
  bool CanDispatch() const;
  v1::FetchRequest TakePending();
  // Requeue puts a request whose lease ended without a result back at the
  // front.
  void Requeue(v1::FetchRequest request);
  void OnDispatched() {
    ++in_flight_;
    if (owner_budget_) ++owner_budget_->in_flight;
  }
  // Park holds a request back until its rate key has room.
  void Park(v1::FetchRequest request);
  // Unpark moves up to `n` of `key`'s parked requests, oldest first, to the
  // front of the queue; it returns how many moved.
  size_t Unpark(const std::string& key, size_t n);
  // ParkedCounts: parked requests per key.
  std::vector<std::pair<std::string, size_t>> ParkedCounts() const;
  void OnLeaseEnded() {
    --in_flight_;
    if (owner_budget_) --owner_budget_->in_flight;
  }

  // --- results
  // AddResult numbers `result` and appends it to the tail; the job ends when
  // every input request has its result.
  void AddResult(v1::FetchResult result);

  // Cancel ends the job: every waiting request gets a `cancelled` result.
  void Cancel();
  uint64_t next_seq() const { return next_seq_; }
  uint64_t first_held_seq() const { return next_seq_ - tail_.size(); }
  const v1::FetchResult& ResultAt(uint64_t seq) const {
    return tail_[seq - first_held_seq()];
  }
  // MarkDelivered records that a client has received results up to `seq`; the
  // tail may then drop them once it is over its size.
  void MarkDelivered(uint64_t seq);

  // --- listeners
  void AddListener(JobListener* listener) { listeners_.push_back(listener); }
  void RemoveListener(JobListener* listener);
  void NotifyListeners();
  bool has_listeners() const { return !listeners_.empty(); }

  // Status: the job's progress and its statistics (JobStats).
  v1::JobStatus Status() const;
  absl::Time ended_at() const { return ended_at_; }

 private:
  // Enqueue puts a request at the back of the queue (a cancelled job answers
  // it at once).
  void Enqueue(v1::FetchRequest request);
  void Touch() {
    if (journal_ != nullptr) journal_->Touched(this);
  }
  void MaybeEnd();
  void EvictDelivered();
  void RecordStats(const v1::FetchResult& result);
  v1::JobStats Stats() const;

  const std::string id_;
  std::string owner_;
  std::shared_ptr<InFlightBudget> owner_budget_;
  const v1::JobOptions options_;
  const JobLimits limits_;
  const Clock* const clock_;
  absl::Time created_;  // on clock_ (a restored job's is moved back)
  const int64_t created_unix_ms_;
  absl::Time ended_at_ = absl::InfiniteFuture();
  bool interactive_ = false;
  bool end_taken_ = false;
  JobTrace trace_;

  v1::JobState state_ = v1::JOB_RUNNING;
  bool input_closed_ = false;
  std::deque<v1::FetchRequest> pending_;
  struct ParkedRequest {
    absl::Time since;
    v1::FetchRequest request;
  };
  absl::flat_hash_map<std::string, std::deque<ParkedRequest>> parked_;
  size_t parked_count_ = 0;
  absl::Duration rate_wait_;  // parked time plus workers' slot waits
  uint64_t in_flight_ = 0;

  uint64_t total_ = 0;
  uint64_t done_ = 0;
  uint64_t ok_ = 0;
  uint64_t failed_ = 0;
  uint64_t retries_ = 0;

  // Statistics (JobStats), from every result added: bounded whatever the
  // job's size.
  LatencyHistogram latency_;
  // Results by ErrorKind (ERROR_NONE: ok); kinds past the enum's end share
  // the last slot ("unknown").
  static constexpr int kOutcomeSlots = v1::ErrorKind_MAX + 2;
  uint64_t outcomes_[kOutcomeSlots] = {};
  // Results by status class: none (0), 1xx to 5xx, other.
  uint64_t status_classes_[7] = {};
  uint64_t body_bytes_ = 0;

  std::deque<v1::FetchResult> tail_;
  size_t tail_bytes_ = 0;         // body bytes of every held result
  size_t undelivered_bytes_ = 0;  // of those no client has received yet
  uint64_t next_seq_ = 1;
  uint64_t delivered_seq_ = 0;  // highest seq any client has received

  std::vector<JobListener*> listeners_;

  // Durability (none without a store).
  JobStore* store_ = nullptr;
  JobJournal* journal_ = nullptr;
  InputLedger ledger_;
  std::string unwritten_results_;  // since the last WriteChanges (AppendResult)
  uint64_t unwritten_first_seq_ = 0;
  uint64_t lines_received_ = 0;
  uint64_t next_index_ = 0;
  uint64_t loaded_index_ = 0;  // every index below is in memory or answered
  bool loading_ = false;
  uint64_t durable_seq_ = 0;
  uint64_t durable_lines_ = 0;
  uint64_t durable_index_ = 0;
  bool record_durable_ = false;
  bool input_close_durable_ = false;
  bool cancel_durable_ = false;
  bool end_durable_ = false;
  std::vector<absl::AnyInvocable<void()>> cancel_waiters_;
  const void* input_owner_ = nullptr;
  absl::Time orphaned_at_ = absl::InfinitePast();
};

}  // namespace fetchfleet::coordinator
