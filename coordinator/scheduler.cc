#include "coordinator/scheduler.h"

#include <algorithm>

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/rate_limiter.h"
#include "common/request_parser.h"
#include "coordinator/worker_input.h"

namespace fetchfleet::coordinator {
namespace {

// Breaker reports kept for listing before closed ones are dropped.

}  // namespace

Scheduler::Scheduler(const Clock* clock, SchedulerOptions options)
    : clock_(clock),
      options_(std::move(options)),
      quota_(options_.user_limits),
      gate_(clock),
      breaker_reports_(clock),
      health_(options_.health) {}

// ---------------------------------------------------------------------------------------
// Jobs

std::string Scheduler::NewJobId(absl::string_view prefix) {
  std::string id;
  do {
    id =
        absl::StrFormat("%s-%012x", prefix,
                        absl::Uniform<uint64_t>(id_gen_, 0, uint64_t{1} << 48));
  } while (jobs_.count(id) > 0);
  return id;
}

JobLimits Scheduler::LimitsFor(const v1::JobOptions& options) const {
  JobLimits limits = options_.job_limits;
  // A job may ask for a longer spool (results waiting for a client), up to
  // the coordinator's cap.
  if (options.spool_results() > 0) {
    limits.tail_results = static_cast<size_t>(
        std::min(options.spool_results(), options_.spool_max_results));
  }
  if (options.spool_bytes() > 0) {
    limits.tail_bytes = static_cast<size_t>(
        std::min(options.spool_bytes(), options_.spool_max_bytes));
  }
  return limits;
}

void Scheduler::AddJob(std::unique_ptr<Job> job) {
  Job* raw = job.get();
  if (options_.user_limits.in_flight > 0) {
    std::shared_ptr<InFlightBudget>& budget = owner_budgets_[raw->owner()];
    if (budget == nullptr) {
      budget = std::make_shared<InFlightBudget>();
      budget->max = static_cast<uint64_t>(options_.user_limits.in_flight);
    }
    raw->set_owner_budget(budget);
  }
  std::string id = raw->id();
  jobs_.emplace(std::move(id), std::move(job));
  if (raw->ended()) {
    ended_.push_back(raw);
  } else {
    running_.push_back(raw);
  }
}

Job* Scheduler::CreateJob(v1::JobOptions options, std::string owner) {
  std::string id = NewJobId("j");
  JobLimits limits = LimitsFor(options);
  auto job = std::make_unique<Job>(id, std::move(options), limits, clock_,
                                   absl::ToUnixMillis(WallNow()));
  Job* raw = job.get();
  raw->set_trace(JobTrace::Start(options_.tracing, raw->options().traceparent(),
                                 raw->options().tracestate(), WallNow()));
  FF_LOG(INFO) << LogField(kLogJob, id) << LogTraceId(raw->trace().trace_id())
               << LogField("owner", owner) << "job " << id << " created by "
               << owner;
  raw->set_owner(std::move(owner));
  if (durable_ != nullptr) raw->SetStore(durable_->store(), durable_);
  AddJob(std::move(job));
  return raw;
}

void Scheduler::RestoreJobs(const std::vector<RecoveredJob>& jobs) {
  // Ended jobs in the order they ended, as ForgetOldJobs expects.
  std::vector<const RecoveredJob*> order;
  for (const RecoveredJob& recovered : jobs) order.push_back(&recovered);
  std::stable_sort(order.begin(), order.end(),
                   [](const RecoveredJob* a, const RecoveredJob* b) {
                     int64_t ea = a->progress.ended_unix_ms();
                     int64_t eb = b->progress.ended_unix_ms();
                     return (ea == 0 ? INT64_MAX : ea) <
                            (eb == 0 ? INT64_MAX : eb);
                   });
  for (const RecoveredJob* entry : order) {
    const RecoveredJob& recovered = *entry;
    std::unique_ptr<Job> job =
        Job::Restore(recovered, LimitsFor(recovered.record.options()), clock_,
                     durable_->store(), durable_);
    Job* raw = job.get();
    raw->set_trace(JobTrace::Start(options_.tracing,
                                   raw->options().traceparent(),
                                   raw->options().tracestate(), WallNow()));
    if (!raw->input_closed()) raw->set_input_owner(nullptr, clock_->Now());
    v1::JobStatus status = raw->Status();
    FF_LOG(INFO) << LogField(kLogJob, raw->id())
                 << LogField("owner", raw->owner())
                 << LogField("done", status.done())
                 << LogField("waiting", recovered.waiting_input) << "job "
                 << raw->id() << " of " << raw->owner()
                 << " restored: " << status.done() << " of " << status.total()
                 << " requests done, " << recovered.waiting_input
                 << " waiting, input "
                 << (raw->input_closed() ? "complete" : "open");
    AddJob(std::move(job));
  }
}

void Scheduler::OnJobDurable(Job* job) {
  job->NotifyListeners();
  LoadSpooled(job);
  ResumeInputs();
}

std::string Scheduler::store_error() const {
  return durable_ == nullptr ? std::string() : durable_->store()->error();
}

void Scheduler::LoadSpooled() {
  if (durable_ == nullptr) return;
  for (Job* job : running_) LoadSpooled(job);
}

void Scheduler::LoadSpooled(Job* job) {
  if (durable_ == nullptr || !job->WantsLoad()) return;
  auto [from, upto] = job->BeginLoad();
  durable_->store()->LoadInput(
      job->id(), from, upto, Job::kLoadBatch,
      [this, id = job->id(),
       upto = upto](absl::StatusOr<std::vector<SpooledLine>> loaded) {
        Job* job = FindJob(id);
        if (job == nullptr) return;
        if (!loaded.ok()) {
          // Read again at the next dispatch; the rows are still there.
          FF_LOG(ERROR) << LogField(kLogJob, id) << "job " << id
                        << ": reading its spooled input failed: "
                        << loaded.status().message();
          job->FailLoad();
          return;
        }
        std::vector<SpooledLine> lines = *std::move(loaded);
        for (SpooledLine& line : lines) {
          if (!line.is_error) job->trace().Stamp(&line.request);
        }
        job->EndLoad(std::move(lines), upto, Job::kLoadBatch);
        OnJobEnded(job);
        Dispatch();
        job->NotifyListeners();
        LoadSpooled(job);
      });
}

void Scheduler::CloseOrphanedInputs() {
  if (durable_ == nullptr) return;
  absl::Time now = clock_->Now();
  std::vector<Job*> orphans;
  for (Job* job : running_) {
    if (!job->input_closed() &&
        job->orphaned_at() + options_.input_resume_timeout <= now)
      orphans.push_back(job);
  }
  for (Job* job : orphans) {
    FF_LOG(WARNING) << LogField(kLogJob, job->id())
                    << LogField("lines", job->lines_received()) << "job "
                    << job->id() << ": no client resumed its input within "
                    << absl::FormatDuration(options_.input_resume_timeout)
                    << "; the input ends with the " << job->lines_received()
                    << " lines it has";
    paused_inputs_.erase(job);
    job->CloseInput();
    OnJobEnded(job);
    job->NotifyListeners();
  }
}

size_t Scheduler::RunningJobsOf(absl::string_view owner) const {
  size_t n = 0;
  for (const Job* job : running_)
    if (!job->ended() && !job->interactive() && job->owner() == owner) ++n;
  return n;
}

Job* Scheduler::FindJob(absl::string_view job_id) {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : it->second.get();
}

void Scheduler::TakeInput(Job* job, InputStream* stream) {
  paused_inputs_.erase(job);
  job->set_input_owner(stream, clock_->Now());
}

void Scheduler::AddInput(Job* job, std::vector<ParsedLine> lines,
                         uint64_t raw_lines, InputStream* stream) {
  // A stream that lost the input to a resuming one: its lines are the
  // resumer's to send again.
  if (job->input_owner() != stream || job->input_closed()) return;
  for (ParsedLine& line : lines) {
    SpooledLine spooled;
    if (line.kind == ParsedLine::Kind::kRequest) {
      job->trace().Stamp(&line.request);
      spooled.index = line.request.index();
      spooled.request = std::move(line.request);
    } else if (line.kind == ParsedLine::Kind::kError) {
      spooled.index = line.error.index();
      spooled.is_error = true;
      spooled.error = std::move(line.error);
    } else {
      continue;
    }
    job->AcceptLine(std::move(spooled));
  }
  job->CountLines(raw_lines);
  Dispatch();
  job->NotifyListeners();
  if (job->WantsInput() && (durable_ == nullptr || !durable_->Backlogged())) {
    stream->ReadMoreInput();
  } else if (!job->input_closed()) {
    paused_inputs_[job] = stream;
  }
}

void Scheduler::CloseInput(Job* job, InputStream* stream) {
  if (job->input_owner() != stream) return;
  paused_inputs_.erase(job);
  job->CloseInput();
  OnJobEnded(job);
  job->NotifyListeners();
}

void Scheduler::DetachInput(Job* job, InputStream* stream) {
  auto it = paused_inputs_.find(job);
  if (it != paused_inputs_.end() && it->second == stream)
    paused_inputs_.erase(it);
  if (job->input_owner() == stream)
    job->set_input_owner(nullptr, clock_->Now());
}

Job* Scheduler::StartInteractive(std::vector<v1::FetchRequest> requests,
                                 v1::JobOptions options) {
  std::string id = NewJobId("a");
  auto job = std::make_unique<Job>(id, std::move(options), options_.job_limits,
                                   clock_, absl::ToUnixMillis(WallNow()));
  Job* raw = job.get();
  raw->set_interactive();
  jobs_.emplace(id, std::move(job));
  ++interactive_running_;
  for (v1::FetchRequest& request : requests)
    raw->AddRequest(std::move(request));
  raw->CloseInput();
  MarkReady(raw);
  Dispatch();
  return raw;
}

void Scheduler::ForgetJob(Job* job) {
  if (!job->ended()) return;
  ended_.erase(std::remove(ended_.begin(), ended_.end(), job), ended_.end());
  jobs_.erase(job->id());
}

absl::StatusOr<v1::JobStatus> Scheduler::CancelJob(absl::string_view job_id) {
  Job* job = FindJob(job_id);
  if (job == nullptr)
    return absl::NotFoundError(absl::StrCat("no job ", job_id));
  if (!job->ended() && job->state() == v1::JOB_RUNNING) {
    for (const auto& [key, count] : job->ParkedCounts())
      gate_.OnParked(key, -static_cast<int64_t>(count));
    job->Cancel();
    std::vector<Lease> leases = leases_.ReleaseJob(job->id());
    std::map<uint64_t, v1::CoordinatorMessage> abandon;
    for (Lease& lease : leases) {
      abandon[lease.worker_id].add_cancelled(lease.id);
      v1::FetchResult result;
      result.set_error(v1::ERROR_CANCELLED);
      result.set_error_message("the job was cancelled");
      EndLeaseWithResult(lease, std::move(result));
    }
    for (auto& [worker_id, message] : abandon) {
      auto w = workers_.find(worker_id);
      if (w != workers_.end()) w->second.channel->Send(std::move(message));
    }
    if (!job->interactive())
      FF_LOG(INFO) << LogField(kLogJob, job->id())
                   << LogTraceId(job->trace().trace_id()) << "job " << job->id()
                   << " cancelled";
    OnJobEnded(job);
    job->NotifyListeners();
  }
  return job->Status();
}

std::vector<v1::JobStatus> Scheduler::ListJobs() const {
  std::vector<v1::JobStatus> out;
  std::string store_error = this->store_error();
  for (const auto& [id, job] : jobs_) {
    if (job->interactive()) continue;
    out.push_back(job->Status());
    out.back().set_store_error(store_error);
  }
  std::sort(out.begin(), out.end(),
            [](const v1::JobStatus& a, const v1::JobStatus& b) {
              return a.created_unix_ms() < b.created_unix_ms();
            });
  return out;
}

void Scheduler::ResultsDelivered(Job* job, uint64_t seq) {
  bool could = job->CanDispatch();
  uint64_t before = job->delivered_seq();
  job->MarkDelivered(seq);
  counters_.results_delivered += job->delivered_seq() - before;
  if (!could && job->CanDispatch()) Dispatch();
  ResumeInputs();
}

void Scheduler::OnJobEnded(Job* job) {
  // Called wherever a job may have ended (a cancel answers each of its
  // leases, then ends it; a closed input may end a cancelled job again):
  // the bookkeeping runs once.
  if (!job->TakeEnd()) return;
  running_.erase(std::remove(running_.begin(), running_.end(), job),
                 running_.end());
  paused_inputs_.erase(job);
  ended_.push_back(job);
  if (job->interactive()) {
    --interactive_running_;
    return;  // its caller reports it
  }
  ++(job->state() == v1::JOB_CANCELLED ? counters_.jobs_cancelled
                                       : counters_.jobs_done);
  v1::JobStatus status = job->Status();
  const v1::JobStats& stats = status.stats();
  FF_LOG(INFO) << LogField(kLogJob, job->id())
               << LogTraceId(job->trace().trace_id())
               << LogField("state", job->state() == v1::JOB_CANCELLED
                                        ? "cancelled"
                                        : "done")
               << LogField("ok", status.ok())
               << LogField("failed", status.failed())
               << LogField("retries", status.retries())
               << LogField("elapsed_s", status.elapsed_s())
               << LogField("latency_p50_ms", stats.latency_p50_ms())
               << LogField("latency_p99_ms", stats.latency_p99_ms())
               << LogField("latency_max_ms", stats.latency_max_ms())
               << LogField("body_bytes", stats.body_bytes()) << "job "
               << job->id()
               << (job->state() == v1::JOB_CANCELLED ? " cancelled" : " done")
               << ": " << status.ok() << " ok, " << status.failed()
               << " failed, " << status.retries() << " retries in "
               << status.elapsed_s() << " s";
  ExportJobSpan(*job, status);
  // Jobs are forgotten only by Sweep, never here: callers may still hold this
  // pointer.
}

void Scheduler::ExportJobSpan(const Job& job, const v1::JobStatus& status) {
  const JobTrace& trace = job.trace();
  if (!trace.recording()) return;
  otlp::trace::v1::Span span = trace.NewJobSpan("job", WallNow());
  SetAttribute(&span, "fetchfleet.job.id", job.id());
  SetAttribute(&span, "fetchfleet.job.owner", job.owner());
  SetAttribute(&span, "fetchfleet.job.state",
               job.state() == v1::JOB_CANCELLED ? "cancelled" : "done");
  SetAttribute(&span, "fetchfleet.job.requests",
               static_cast<int64_t>(status.total()));
  SetAttribute(&span, "fetchfleet.job.ok", static_cast<int64_t>(status.ok()));
  SetAttribute(&span, "fetchfleet.job.failed",
               static_cast<int64_t>(status.failed()));
  SetAttribute(&span, "fetchfleet.job.retries",
               static_cast<int64_t>(status.retries()));
  SetAttribute(&span, "fetchfleet.job.rate_wait_s", status.rate_wait_s());
  if (job.state() == v1::JOB_CANCELLED)
    SetError(&span, "the job was cancelled");
  trace.Export(std::move(span));
}

void Scheduler::ForgetOldJobs() {
  absl::Time now = clock_->Now();
  while (!ended_.empty() &&
         (ended_.size() > options_.ended_jobs_kept ||
          ended_.front()->ended_at() + options_.ended_job_ttl < now)) {
    Job* job = ended_.front();
    // A job still watched is kept until its listeners have gone.
    if (job->has_listeners()) break;
    ended_.erase(ended_.begin());
    if (job->durable()) durable_->Forget(job->id());
    jobs_.erase(job->id());
  }
}

void Scheduler::ResumeInputs() {
  if (durable_ != nullptr && durable_->Backlogged()) return;
  for (auto it = paused_inputs_.begin(); it != paused_inputs_.end();) {
    if (it->first->WantsInput()) {
      InputStream* stream = it->second;
      paused_inputs_.erase(it++);
      stream->ReadMoreInput();
    } else {
      ++it;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Dispatch

void Scheduler::MarkReady(Job* job) {
  if (job->interactive()) interactive_ready_.push_back(job->id());
}

Job* Scheduler::NextDispatchableJob(bool batch) {
  while (!interactive_ready_.empty()) {
    Job* job = FindJob(interactive_ready_.front());
    if (job != nullptr && !job->ended() && job->CanDispatch()) return job;
    interactive_ready_.pop_front();
  }
  if (!batch) return nullptr;
  for (size_t tried = 0; tried < running_.size(); ++tried) {
    if (next_job_ >= running_.size()) next_job_ = 0;
    Job* job = running_[next_job_++];
    if (job->CanDispatch()) return job;
  }
  return nullptr;
}

void Scheduler::Dispatch() {
  absl::Time now = clock_->Now();
  // Work is dealt in rounds of small chunks, so that every worker with credit
  // gets a share; each worker's share of one Dispatch still goes out as few
  // messages as possible.
  std::map<uint64_t, v1::CoordinatorMessage> outgoing;
  std::map<uint64_t, size_t> outgoing_bytes;
  auto flush = [&](uint64_t worker_id) {
    auto it = outgoing.find(worker_id);
    if (it == outgoing.end() || it->second.assignments_size() == 0) return;
    workers_[worker_id].channel->Send(std::move(it->second));
    outgoing.erase(it);
    outgoing_bytes.erase(worker_id);
  };
  bool progress = true;
  while (progress) {
    progress = false;
    // Every worker once, starting after the one served last.
    std::vector<uint64_t> order;
    order.reserve(workers_.size());
    for (auto it = workers_.upper_bound(last_served_worker_);
         it != workers_.end(); ++it)
      order.push_back(it->first);
    for (auto it = workers_.begin();
         it != workers_.end() && it->first <= last_served_worker_; ++it)
      order.push_back(it->first);
    for (uint64_t id : order) {
      WorkerState& worker = workers_[id];
      size_t taken = 0;
      // Batch jobs leave a few credits of each worker to the interactive
      // lane, so an Aggregate call never waits for batch work to finish.
      uint64_t reserve =
          worker.max_credit / options_.interactive_reserve_divisor;
      while (taken < options_.dispatch_chunk && worker.credit > 0 &&
             !worker.draining && !shutting_down_ &&
             health_.MayTake(id, leases_.CountForWorker(id), now)) {
        Job* job = NextDispatchableJob(worker.credit > reserve);
        if (job == nullptr) break;
        v1::FetchRequest request = job->TakePending();
        if (!gate_.Admit(request.rate_key())) {
          // Its key has enough out already: it waits here, not at a worker.
          gate_.OnParked(request.rate_key(), 1);
          if (job->interactive())
            interactive_parked_[request.rate_key()].push_back(job->id());
          job->Park(std::move(request));
          continue;
        }
        ++taken;
        job->OnDispatched();
        int64_t attempts = std::max<uint32_t>(request.max_attempts(), 1);
        // --on-open=wait: a request may wait at an open breaker for as long
        // as its attempts could take.
        uint32_t breaker_wait_ms =
            job->options().on_open() == v1::ON_OPEN_WAIT
                ? static_cast<uint32_t>(std::min<int64_t>(
                      attempts * std::max<uint32_t>(request.timeout_ms(), 1),
                      kMaxTimeoutMs))
                : 0;
        absl::Duration lease_duration = LeaseDuration(
            static_cast<uint32_t>(attempts),
            absl::Milliseconds(request.timeout_ms()),
            absl::Milliseconds(breaker_wait_ms),
            gate_.MaxSlotWait(request.rate_key()), options_.lease_plan);
        v1::Assignment* assignment = outgoing[id].add_assignments();
        assignment->set_breaker_wait_ms(breaker_wait_ms);
        *assignment->mutable_request() = request;
        assignment->set_include_headers(job->options().include_headers());
        assignment->set_body_cap_bytes(job->options().body_cap_bytes());
        outgoing_bytes[id] += request.ByteSizeLong();
        assignment->set_lease_id(leases_.Grant(
            id, job->id(), std::move(request), now, lease_duration));
        --worker.credit;
        progress = true;
        last_served_worker_ = id;
        bool limited = gate_.Limited(assignment->request().rate_key());
        if (static_cast<size_t>(outgoing[id].assignments_size()) >=
                options_.max_batch ||
            outgoing_bytes[id] >= options_.max_batch_bytes) {
          flush(id);  // `assignment` is gone from here on
        }
        // A limited key's requests go one per worker per round: with
        // --redis-failure=local (or no Redis) each worker spends its share
        // of R, so the key only runs at R when spread evenly.
        if (limited) break;
      }
    }
  }
  while (!outgoing.empty()) flush(outgoing.begin()->first);
  LoadSpooled();
  ResumeInputs();
}

void Scheduler::ReturnLeases(std::vector<Lease> leases) {
  counters_.requests_requeued += leases.size();
  for (Lease& lease : leases) {
    EndLease(lease.request.rate_key(), 0);
    Job* job = FindJob(lease.job_id);
    if (job == nullptr) continue;
    job->OnLeaseEnded();
    job->Requeue(std::move(lease.request));
    MarkReady(job);
  }
  if (!leases.empty()) Dispatch();
}

void Scheduler::EndLeaseWithResult(Lease& lease, v1::FetchResult result) {
  EndLease(lease.request.rate_key(), result.attempts());
  Job* job = FindJob(lease.job_id);
  if (job == nullptr) return;
  job->OnLeaseEnded();
  if (result.id().empty()) {
    result.set_index(lease.request.index());
    result.set_id(lease.request.id());
    result.set_url(lease.request.url());
  }
  job->AddResult(std::move(result));
  OnJobEnded(job);
}

// ---------------------------------------------------------------------------------------
// Rate limits

void Scheduler::EndLease(const std::string& key, uint32_t attempts) {
  gate_.Release(key, attempts);
  ReleaseParked(key);
}

void Scheduler::ReleaseParked(const std::string& key) {
  uint64_t room = gate_.HasParked(key) ? gate_.Room(key) : 0;
  // Interactive jobs' parked requests go first, one entry each. Entries of
  // jobs cancelled meanwhile are dropped here too.
  if (auto it = interactive_parked_.find(key);
      it != interactive_parked_.end()) {
    std::deque<std::string>& parked = it->second;
    while (!parked.empty()) {
      Job* job = FindJob(parked.front());
      if (job != nullptr && !job->ended()) {
        if (room == 0) break;
        size_t moved = job->Unpark(key, 1);
        gate_.OnParked(key, -static_cast<int64_t>(moved));
        room -= moved;
        MarkReady(job);
      }
      parked.pop_front();
    }
    if (parked.empty()) interactive_parked_.erase(it);
  }
  for (Job* job : running_) {
    if (room == 0) break;
    size_t moved = job->Unpark(key, room);
    gate_.OnParked(key, -static_cast<int64_t>(moved));
    room -= moved;
  }
}

void Scheduler::SetLimits(std::map<std::string, RateLimit> limits) {
  std::vector<std::string> grew = gate_.SetLimits(std::move(limits));
  for (const std::string& key : grew) ReleaseParked(key);
  BroadcastLimits();
  Dispatch();
}

v1::LimitTable Scheduler::ListLimits() const {
  return gate_.Listing(LiveWorkers());
}

uint32_t Scheduler::LiveWorkers() const {
  // Ejected workers get no new work, so they hold no share of a rate.
  absl::Time now = clock_->Now();
  uint32_t live = 0;
  for (const auto& [id, worker] : workers_)
    live += (worker.draining || health_.Ejected(id, now)) ? 0 : 1;
  return live;
}

void Scheduler::SetBreakers(v1::BreakerTable table) {
  breakers_ = std::move(table);
  for (auto& [id, worker] : workers_) {
    v1::CoordinatorMessage message;
    *message.mutable_breakers() = breakers_;
    worker.channel->Send(std::move(message));
  }
}

void Scheduler::ResetBreaker(const std::string& key) {
  breaker_reports_.Forget(key);
  for (auto& [id, worker] : workers_) {
    v1::CoordinatorMessage message;
    message.add_breaker_resets(key);
    worker.channel->Send(std::move(message));
  }
  FF_LOG(INFO) << LogField(kLogKey, key) << "breaker " << key
               << " reset by an operator";
}

bool Scheduler::BreakerConfigured(const std::string& key) const {
  if (limits().count(key) > 0) return true;
  for (const v1::BreakerSetting& setting : breakers_.settings())
    if (setting.key() == key) return true;
  return false;
}

void Scheduler::BroadcastLimits() {
  announced_live_workers_ = LiveWorkers();
  v1::LimitTable table =
      gate_.Table(std::max<uint32_t>(announced_live_workers_, 1));
  for (auto& [id, worker] : workers_) {
    v1::CoordinatorMessage message;
    *message.mutable_limits() = table;
    worker.channel->Send(std::move(message));
  }
}

// ---------------------------------------------------------------------------------------
// Workers

uint64_t Scheduler::AddWorker(WorkerChannel* channel, std::string name,
                              std::string peer) {
  ++counters_.workers_connected;
  uint64_t id = next_worker_id_++;
  WorkerState& worker = workers_[id];
  worker.id = id;
  worker.channel = channel;
  worker.name = std::move(name);
  worker.peer = std::move(peer);
  worker.last_seen = clock_->Now();
  worker.last_seen_unix_ms = absl::ToUnixMillis(WallNow());
  health_.AddWorker(id, worker.name);
  FF_LOG(INFO) << LogField(kLogWorker, worker.name)
               << LogField("peer", worker.peer) << "worker " << worker.name
               << " (" << worker.peer << ") connected";
  v1::CoordinatorMessage welcome;
  welcome.set_heartbeat_interval_ms(
      absl::ToInt64Milliseconds(options_.heartbeat_interval));
  *welcome.mutable_breakers() = breakers_;
  channel->Send(std::move(welcome));
  // Everyone hears the new worker count (for --redis-failure=local), the new
  // worker the whole table.
  BroadcastLimits();
  return id;
}

void Scheduler::OnWorkerMessage(uint64_t worker_id,
                                const v1::WorkerMessage& message) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return;
  WorkerState& worker = it->second;
  worker.last_seen = clock_->Now();
  worker.last_seen_unix_ms = absl::ToUnixMillis(WallNow());
  // Credit is the worker's word: bounded, so a worker cannot claim the
  // fleet's whole queue.
  worker.credit =
      std::min<uint64_t>(worker.credit + message.credit(), kMaxWorkerCredit);
  worker.max_credit = std::max(worker.max_credit, worker.credit);
  worker.reported_in_flight = message.in_flight();
  if (message.draining() && !worker.draining) {
    worker.draining = true;
    FF_LOG(INFO) << LogField(kLogWorker, worker.name) << "worker "
                 << worker.name << " is draining";
  }
  bool paused = false;
  for (const v1::KeyPause& pause : message.paused()) {
    if (!CheckRateKey(pause.key()).ok()) continue;
    uint64_t pause_ms = std::min<uint64_t>(
        pause.retry_after_ms(), absl::ToInt64Milliseconds(kMaxKeyPause));
    absl::Time until = clock_->Now() + absl::Milliseconds(pause_ms);
    if (gate_.Pause(pause.key(), until)) {
      FF_LOG(INFO) << LogField(kLogKey, pause.key())
                   << LogField(kLogWorker, worker.name)
                   << LogField("pause_ms", pause_ms) << "rate key "
                   << pause.key() << " paused for " << pause_ms
                   << " ms (upstream Retry-After, seen by " << worker.name
                   << ")";
      // The key's requests out at workers now wait for the pause: their
      // leases get their plan again from its end.
      leases_.ExtendKey(pause.key(), until);
      paused = true;
    }
  }
  if (paused || LiveWorkers() != announced_live_workers_) BroadcastLimits();
  for (v1::BreakerEvent event : message.breaker_events()) {
    if (BoundBreakerEvent(&event))
      breaker_reports_.OnEvent(worker.name, event,
                               BreakerConfigured(event.key()));
  }

  std::vector<Job*> touched;
  bool failures = false;
  for (const v1::Completion& completion : message.completions()) {
    std::optional<Lease> lease =
        leases_.Complete(completion.lease_id(), worker_id);
    if (!lease) {
      ++dropped_results_;  // late: the lease ended already and its request went
                           // elsewhere
      continue;
    }
    Job* job = FindJob(lease->job_id);
    ++worker.done;
    v1::FetchResult result = completion.result();
    uint64_t body_cap = job != nullptr && job->options().body_cap_bytes() > 0
                            ? job->options().body_cap_bytes()
                            : kDefaultBodyCapBytes;
    StampResult(*lease, worker.name, body_cap, &result);
    if (job != nullptr && result.error() >= 0 &&
        result.error() < v1::ErrorKind_ARRAYSIZE)
      ++counters_.results[result.error()];
    if (!result.ok()) ++worker.failed;
    health_.OnResult(worker_id, result, clock_->Now());
    failures |= ClassifyForHealth(result) == ResultClass::kTransportFailure;
    EndLeaseWithResult(*lease, std::move(result));
    if (job != nullptr &&
        std::find(touched.begin(), touched.end(), job) == touched.end())
      touched.push_back(job);
  }

  std::vector<Lease> released;
  for (uint64_t lease_id : message.released()) {
    std::optional<Lease> lease = leases_.Complete(lease_id, worker_id);
    if (lease) released.push_back(std::move(*lease));
  }
  ReturnLeases(std::move(released));
  // A worker failing alone fails fast: judge it as its failures come in (at
  // most every 50 ms), not only at the next sweep.
  if (failures && clock_->Now() - last_health_check_ >= absl::Milliseconds(50))
    CheckHealth();
  Dispatch();
  for (Job* job : touched) job->NotifyListeners();
  if (shutting_down_) CloseIfDone(worker_id);
}

void Scheduler::RemoveWorker(uint64_t worker_id, absl::string_view why) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return;
  std::vector<Lease> leases = leases_.ReleaseWorker(worker_id);
  if (shutting_down_) why = "the coordinator is shutting down";
  FF_LOG(INFO) << LogField(kLogWorker, it->second.name)
               << LogField("leases", leases.size()) << "worker "
               << it->second.name << " left (" << why << "); " << leases.size()
               << " leases back to the queue";
  health_.RemoveWorker(worker_id);
  workers_.erase(it);
  BroadcastLimits();
  ReturnLeases(std::move(leases));
}

std::vector<v1::WorkerInfo> Scheduler::ListWorkers() const {
  absl::Time now = clock_->Now();
  int64_t now_unix_ms = absl::ToUnixMillis(WallNow());
  std::vector<v1::WorkerInfo> out;
  for (const auto& [id, worker] : workers_) {
    v1::WorkerInfo info;
    info.set_name(worker.name);
    info.set_peer(worker.peer);
    info.set_in_flight(leases_.CountForWorker(id));
    info.set_done(worker.done);
    info.set_failed(worker.failed);
    info.set_last_heartbeat_unix_ms(worker.last_seen_unix_ms);
    info.set_draining(worker.draining);
    info.set_credit(worker.credit);
    health_.Fill(id, now, now_unix_ms, &info);
    out.push_back(std::move(info));
  }
  return out;
}

Scheduler::Census Scheduler::TakeCensus() const {
  Census census;
  for (const auto& [id, job] : jobs_) {
    if (job->interactive()) continue;
    switch (job->state()) {
      case v1::JOB_RUNNING:
        ++census.jobs_running;
        break;
      case v1::JOB_CANCELLED:
        ++census.jobs_cancelled;
        break;
      default:
        ++census.jobs_done;
        break;
    }
    census.requests_parked += job->parked_count();
    census.requests_pending += job->unparked_pending_count();
    census.requests_spooled += job->spooled();
    census.requests_leased += job->in_flight();
  }
  absl::Time now = clock_->Now();
  for (const auto& [id, worker] : workers_) {
    if (worker.draining) {
      ++census.workers_draining;
    } else if (health_.Ejected(id, now)) {
      ++census.workers_ejected;
    } else {
      ++census.workers_active;
    }
  }
  return census;
}

void Scheduler::Sweep() {
  absl::Time now = clock_->Now();
  std::vector<uint64_t> dead;
  for (const auto& [id, worker] : workers_) {
    if (now - worker.last_seen > options_.worker_timeout) dead.push_back(id);
  }
  for (uint64_t id : dead) {
    WorkerChannel* channel = workers_[id].channel;
    RemoveWorker(id, "missed heartbeats");
    channel->Close(absl::UnavailableError("missed heartbeats; reconnect"));
  }
  std::vector<Lease> expired = leases_.TakeExpired(now);
  counters_.leases_expired += expired.size();
  std::map<uint64_t, v1::CoordinatorMessage> abandon;
  std::map<uint64_t, absl::Time> oldest_granted;
  for (const Lease& lease : expired) {
    abandon[lease.worker_id].add_cancelled(lease.id);
    auto [it, fresh] = oldest_granted.emplace(lease.worker_id, lease.granted);
    if (!fresh) it->second = std::min(it->second, lease.granted);
  }
  for (auto& [worker_id, message] : abandon) {
    auto w = workers_.find(worker_id);
    if (w == workers_.end()) continue;
    FF_LOG(WARNING) << LogField(kLogWorker, w->second.name)
                    << LogField("leases", message.cancelled_size())
                    << message.cancelled_size() << " lease(s) of worker "
                    << w->second.name << " outlived their deadline; requeued";
    health_.OnLeasesExpired(worker_id, message.cancelled_size(),
                            oldest_granted[worker_id], now);
    w->second.channel->Send(std::move(message));
  }
  // Ejections first, so a stalled worker is not dealt its own expired leases
  // again.
  bool ejections_changed = CheckHealth();
  ReturnLeases(std::move(expired));
  if (ejections_changed) Dispatch();
  std::vector<std::string> unpaused = gate_.ExpirePauses();
  for (const std::string& key : unpaused) ReleaseParked(key);
  if (!unpaused.empty()) Dispatch();
  CloseOrphanedInputs();
  ForgetOldJobs();
}

bool Scheduler::CheckHealth() {
  last_health_check_ = clock_->Now();
  if (health_.Evaluate(last_health_check_).empty()) return false;
  if (LiveWorkers() != announced_live_workers_) BroadcastLimits();
  return true;
}

void Scheduler::BeginShutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  std::vector<uint64_t> ids;
  for (const auto& [id, worker] : workers_) ids.push_back(id);
  for (uint64_t id : ids) CloseIfDone(id);
}

bool Scheduler::CloseIfDone(uint64_t worker_id) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || leases_.CountForWorker(worker_id) > 0)
    return false;
  WorkerChannel* channel = it->second.channel;
  RemoveWorker(worker_id, "the coordinator is shutting down");
  channel->Close(absl::UnavailableError("the coordinator is shutting down"));
  return true;
}

}  // namespace fetchfleet::coordinator
