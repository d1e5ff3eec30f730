// Scheduler: the coordinator's state and its one mechanism. It holds the jobs,
// the connected workers and the leases, and matches waiting requests to worker
// credit:
//
//   Submit stream --lines--> Job.pending --Dispatch--> lease --assignments-->
//   worker stream worker stream --completions--> lease ends --> Job.tail (seq)
//   --> Submit/Watch streams
//
// Workers grant credit; the scheduler never sends more assignments than
// granted. A worker's leases go back to their jobs' queues when its stream
// breaks, when it misses heartbeats, or when a lease outlives its deadline; a
// late result for a lease that ended is dropped.
//
// Loop thread only: gRPC reactions post onto the coordinator's loop and call in
// from there.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/request_parser.h"
#include "coordinator/breaker_reports.h"
#include "coordinator/job.h"
#include "coordinator/job_journal.h"
#include "coordinator/job_trace.h"
#include "coordinator/key_gate.h"
#include "coordinator/lease_plan.h"
#include "coordinator/lease_table.h"
#include "coordinator/user_quota.h"
#include "coordinator/worker_health.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet::coordinator {

// WorkerChannel is the scheduler's handle on one worker's stream.
class WorkerChannel {
 public:
  virtual ~WorkerChannel() = default;
  virtual void Send(v1::CoordinatorMessage message) = 0;
  // Close ends the stream; the owner then calls RemoveWorker.
  virtual void Close(const absl::Status& status) = 0;
};

// InputStream is a Submit stream whose reading the scheduler paces.
class InputStream {
 public:
  virtual ~InputStream() = default;
  virtual void ReadMoreInput() = 0;
};

struct SchedulerOptions {
  JobLimits job_limits;
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // A worker silent for this long is presumed dead and its leases go back to
  // the queue.
  absl::Duration worker_timeout = absl::Seconds(10);
  // A lease's deadline follows the request's attempt plan (lease_plan.h).
  LeasePlanOptions lease_plan;
  // Outlier ejection of workers that stall or fail alone (worker_health.h).
  WorkerHealthOptions health;
  size_t max_batch = 256;
  size_t dispatch_chunk = 16;  // requests per worker per dealing round
  // Batch jobs leave 1/divisor of each worker's credit (rounded down: none
  // below 16) to the interactive lane.
  uint64_t interactive_reserve_divisor = 16;
  size_t max_batch_bytes = 4 << 20;
  size_t ended_jobs_kept = 100;
  UserLimits user_limits;
  absl::Duration ended_job_ttl = absl::Hours(1);
  // Job and Aggregate spans, and the trace context jobs' requests carry.
  TraceSettings tracing;
  // A durable job whose Submit stream broke before the input ended waits
  // this long for the client to resume it; then its input is closed with the
  // lines it has.
  absl::Duration input_resume_timeout = absl::Minutes(10);
  // The most a job may ask for its result spool (JobOptions.spool_*).
  uint64_t spool_max_results = 1 << 20;
  uint64_t spool_max_bytes = uint64_t{1} << 30;
};

class Scheduler {
 public:
  Scheduler(const Clock* clock, SchedulerOptions options);

  // --- durability (README, "Durable jobs")
  // AttachStore makes every batch job created from now on durable. Call
  // before any job exists.
  void AttachStore(DurableJobs* durable) { durable_ = durable; }
  bool durable() const { return durable_ != nullptr; }
  // RestoreJobs brings back the jobs a store recovered (at start).
  void RestoreJobs(const std::vector<RecoveredJob>& jobs);
  // LoadSpooled brings spooled requests of jobs with room into memory
  // (restored jobs start so).
  void LoadSpooled();
  // OnJobDurable: more of `job` is in the store (DurableJobs calls it).
  void OnJobDurable(Job* job);
  // Why the store cannot write now; empty when it can (or there is none).
  std::string store_error() const;
  // The store, for telemetry (none without one).
  const JobStore* store() const {
    return durable_ != nullptr ? durable_->store() : nullptr;
  }

  // --- jobs
  Job* CreateJob(v1::JobOptions options, std::string owner = "anonymous");
  // RunningJobsOf: `owner`'s jobs that have not ended.
  size_t RunningJobsOf(absl::string_view owner) const;
  // The abuse limits per identity.
  UserQuota& quota() { return quota_; }
  Job* FindJob(absl::string_view job_id);
  // TakeInput makes `stream` the one whose lines `job` takes (a new job's
  // stream, or one resuming it after the last broke).
  void TakeInput(Job* job, InputStream* stream);
  // AddInput queues a parsed batch of `job`'s input, `raw_lines` lines of it
  // (blank ones included), from `stream`, which must hold the job's input.
  // When the job wants more input now, `stream->ReadMoreInput()` is called at
  // once, else later, when its queue has drained (or its lines are durable).
  void AddInput(Job* job, std::vector<ParsedLine> lines, uint64_t raw_lines,
                InputStream* stream);
  // CloseInput ends the input `stream` holds (its client half-closed).
  void CloseInput(Job* job, InputStream* stream);
  // DetachInput forgets a stream that is going away. A durable job's input
  // stays open for a resuming client (input_resume_timeout).
  void DetachInput(Job* job, InputStream* stream);
  absl::StatusOr<v1::JobStatus> CancelJob(absl::string_view job_id);
  std::vector<v1::JobStatus> ListJobs() const;
  // ResultsDelivered records what a client received and may unpause the job.
  void ResultsDelivered(Job* job, uint64_t seq);

  // --- the interactive lane (Aggregate)
  // StartInteractive creates a job of `requests` (input closed) that is
  // dispatched ahead of every batch job, into credit batch jobs may not use.
  // It is not listed with the jobs; the caller forgets it with ForgetJob.
  Job* StartInteractive(std::vector<v1::FetchRequest> requests,
                        v1::JobOptions options);
  // ForgetJob drops an ended job at once (its results are not kept).
  void ForgetJob(Job* job);
  size_t interactive_jobs() const { return interactive_running_; }

  // --- rate limits
  // SetLimits installs the fleet's limits (from the LimitRegistry) and tells
  // every worker.
  void SetLimits(std::map<std::string, RateLimit> limits);
  const std::map<std::string, RateLimit>& limits() const {
    return gate_.limits();
  }
  // ListLimits: each limit and pause, with achieved rates and waiting counts.
  v1::LimitTable ListLimits() const;

  // --- circuit breakers
  // SetBreakers installs the breaker settings (from the BreakerRegistry) and
  // tells every worker.
  void SetBreakers(v1::BreakerTable table);
  // ResetBreaker tells every worker to forget `key`'s breaker.
  void ResetBreaker(const std::string& key);
  // What workers reported of their breakers (breaker_reports.h).
  const BreakerReports& breaker_reports() const { return breaker_reports_; }
  // The breaker settings operators made (keys not listed use the defaults).
  const v1::BreakerTable& breaker_table() const { return breakers_; }

  // --- workers
  uint64_t AddWorker(WorkerChannel* channel, std::string name,
                     std::string peer);
  void OnWorkerMessage(uint64_t worker_id, const v1::WorkerMessage& message);
  void RemoveWorker(uint64_t worker_id, absl::string_view why);
  std::vector<v1::WorkerInfo> ListWorkers() const;

  // Sweep finds dead workers and expired leases, ejects workers that stall or
  // fail alone, and forgets old jobs. Call about every heartbeat interval.
  void Sweep();

  // BeginShutdown stops dispatching and closes the stream of every worker
  // that holds no lease (the others are closed as their last lease ends), so
  // a coordinator without running work stops at once.
  void BeginShutdown();

  // --- telemetry (coordinator_metrics reads these on the loop)
  // Counters: what happened since the coordinator started.
  struct Counters {
    // Results workers returned and jobs accepted, by ErrorKind (0 = ok).
    std::array<uint64_t, v1::ErrorKind_ARRAYSIZE> results{};
    uint64_t results_delivered = 0;  // received by a Submit/Watch client
    uint64_t leases_expired = 0;     // outlived their deadline
    uint64_t requests_requeued = 0;  // back to their job's queue, any reason
    uint64_t workers_connected = 0;  // worker streams accepted
    uint64_t jobs_done = 0;
    uint64_t jobs_cancelled = 0;
  };
  const Counters& counters() const { return counters_; }
  uint64_t worker_ejections() const { return health_.ejections_total(); }
  // Census: what the scheduler holds now (batch jobs; Aggregate calls are
  // counted by the gateway).
  struct Census {
    uint64_t jobs_running = 0;
    uint64_t jobs_done = 0;  // ended jobs still kept for status/watch
    uint64_t jobs_cancelled = 0;
    uint64_t requests_pending = 0;  // waiting for a worker
    uint64_t requests_parked = 0;   // held back by a rate limit or pause
    uint64_t requests_leased = 0;   // out at workers
    uint64_t requests_spooled = 0;  // in the job store, not yet in memory
    uint64_t workers_active = 0;
    uint64_t workers_draining = 0;
    uint64_t workers_ejected = 0;
  };
  Census TakeCensus() const;

  const SchedulerOptions& options() const { return options_; }
  uint64_t dropped_results() const { return dropped_results_; }
  // Jobs ended and not yet forgotten (each listed once).
  size_t ended_jobs() const { return ended_.size(); }

 private:
  struct WorkerState {
    uint64_t id = 0;
    WorkerChannel* channel = nullptr;
    std::string name;
    std::string peer;
    uint64_t credit = 0;
    uint64_t max_credit = 0;  // the most it granted at once
    uint64_t done = 0;
    uint64_t failed = 0;  // of done: results with ok=false
    uint32_t reported_in_flight = 0;
    bool draining = false;
    absl::Time last_seen;
    int64_t last_seen_unix_ms = 0;
  };

  void Dispatch();
  // NextDispatchableJob: interactive jobs first; batch jobs only when
  // `batch` (the worker has credit beyond the interactive reserve).
  Job* NextDispatchableJob(bool batch);
  std::string NewJobId(absl::string_view prefix);
  void ReturnLeases(std::vector<Lease> leases);
  void EndLeaseWithResult(Lease& lease, v1::FetchResult result);
  // OnJobEnded does a job's end bookkeeping, once; a job not ended is left.
  void OnJobEnded(Job* job);
  // ExportJobSpan sends a batch job's span when it is recorded.
  void ExportJobSpan(const Job& job, const v1::JobStatus& status);
  void ResumeInputs();
  void LoadSpooled(Job* job);
  // CloseOrphanedInputs closes durable jobs' inputs that no client resumed.
  void CloseOrphanedInputs();
  JobLimits LimitsFor(const v1::JobOptions& options) const;
  void AddJob(std::unique_ptr<Job> job);
  // EndLease tells the gate a request for `key` came back, and lets parked
  // requests for the key go.
  void EndLease(const std::string& key, uint32_t attempts);
  void ReleaseParked(const std::string& key);
  void BroadcastLimits();
  // BreakerConfigured: `key` has a limit or breaker settings.
  bool BreakerConfigured(const std::string& key) const;
  // MarkReady notes that an interactive job has requests waiting again.
  void MarkReady(Job* job);
  uint32_t LiveWorkers() const;
  void ForgetOldJobs();
  // CloseIfDone closes a worker's stream during shutdown once it holds no
  // lease; true if it did (the worker is then gone).
  bool CloseIfDone(uint64_t worker_id);
  // CheckHealth runs outlier ejection; true when a worker's dispatch state
  // changed (live workers are re-announced then).
  bool CheckHealth();

  const Clock* clock_;
  const SchedulerOptions options_;
  DurableJobs* durable_ = nullptr;
  UserQuota quota_;
  // Per owner, when --user-max-in-flight is set (one entry per identity).
  absl::flat_hash_map<std::string, std::shared_ptr<InFlightBudget>>
      owner_budgets_;
  absl::BitGen id_gen_;

  std::map<std::string, std::unique_ptr<Job>, std::less<>> jobs_;
  std::vector<Job*> running_;  // in creation order; dispatch goes round-robin
  // The interactive lane, kept so that dispatch and unparking cost what is
  // waiting, not the number of Aggregate calls in flight: ids of interactive
  // jobs that may have requests waiting, oldest first (a job may be listed
  // twice; one with nothing waiting, ended or forgotten is dropped when
  // reached), and per rate key one entry per parked interactive request.
  std::deque<std::string> interactive_ready_;
  absl::flat_hash_map<std::string, std::deque<std::string>> interactive_parked_;
  size_t interactive_running_ = 0;
  size_t next_job_ = 0;
  absl::flat_hash_map<Job*, InputStream*> paused_inputs_;
  std::vector<Job*> ended_;  // oldest first

  std::map<uint64_t, WorkerState> workers_;
  // Dispatch starts each round after the worker served last, so work that
  // trickles out one request at a time (a limited key's) is spread evenly.
  uint64_t last_served_worker_ = 0;
  uint64_t next_worker_id_ = 1;
  LeaseTable leases_;
  KeyGate gate_;
  uint32_t announced_live_workers_ = 0;
  v1::BreakerTable breakers_;
  BreakerReports breaker_reports_;
  uint64_t dropped_results_ = 0;
  Counters counters_;
  WorkerHealth health_;
  absl::Time last_health_check_ = absl::InfinitePast();
  bool shutting_down_ = false;
};

}  // namespace fetchfleet::coordinator
