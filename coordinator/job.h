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
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/latency_histogram.h"
#include "coordinator/job_trace.h"
#include "coordinator/user_quota.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet::coordinator {

// JobListener is told when a job has new results or has ended (a Submit or
// Watch stream).
class JobListener {
 public:
  virtual ~JobListener() = default;
  virtual void OnJobProgress() = 0;
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
  bool ended() const {
    return state_ == v1::JOB_DONE || state_ == v1::JOB_CANCELLED;
  }
  // TakeEnd: true once, the first time it is asked after the job ended.
  bool TakeEnd() {
    if (!ended() || end_taken_) return false;
    end_taken_ = true;
    return true;
  }

  // --- input
  // AddRequest queues a validated request.
  void AddRequest(v1::FetchRequest request);
  // CountInput counts a request that will not be queued (a bad line: its result
  // is added).
  void CountInput() { ++total_; }
  void CloseInput();
  bool input_closed() const { return input_closed_; }
  // WantsInput: more input may be read (few requests waiting, and the tail has
  // room for the results that bad lines produce without dispatch).
  bool WantsInput() const {
    return !input_closed_ && pending_.size() < limits_.pending_low_water &&
           parked_count_ < limits_.parked_max &&
           undelivered() < limits_.tail_results;
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
  const absl::Time created_;
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
};

}  // namespace fetchfleet::coordinator
