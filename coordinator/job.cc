#include "coordinator/job.h"

#include <algorithm>

#include "common/result_json.h"

namespace fetchfleet::coordinator {

Job::Job(std::string id, v1::JobOptions options, JobLimits limits,
         const Clock* clock, int64_t created_unix_ms)
    : id_(std::move(id)),
      options_(std::move(options)),
      limits_(limits),
      clock_(clock),
      created_(clock->Now()),
      created_unix_ms_(created_unix_ms) {}

namespace {

// A durable job reads at most this many lines ahead of the store.
constexpr uint64_t kMaxUndurableLines = 16384;

}  // namespace

std::unique_ptr<Job> Job::Restore(const RecoveredJob& recovered,
                                  JobLimits limits, const Clock* clock,
                                  JobStore* store, JobJournal* journal) {
  const store::v1::JobRecord& record = recovered.record;
  const store::v1::JobProgress& p = recovered.progress;
  auto job = std::make_unique<Job>(record.id(), record.options(), limits, clock,
                                   record.created_unix_ms());
  job->owner_ = record.owner();
  job->store_ = store;
  job->journal_ = journal;
  // Elapsed time counts from the job's creation, downtime included.
  absl::Time wall_created = absl::FromUnixMillis(record.created_unix_ms());
  absl::Duration age = std::max(WallNow() - wall_created, absl::ZeroDuration());
  job->created_ = clock->Now() - age;
  if (p.ended_unix_ms() != 0) {
    job->ended_at_ =
        job->created_ +
        std::max(absl::FromUnixMillis(p.ended_unix_ms()) - wall_created,
                 absl::ZeroDuration());
  }
  // An end reported before the restart is not reported again.
  job->end_taken_ = job->ended();
  job->state_ =
      p.state() == v1::JOB_STATE_UNSPECIFIED ? v1::JOB_RUNNING : p.state();
  job->input_closed_ = p.input_closed();
  job->lines_received_ = p.lines_received();
  job->next_index_ = p.next_index();
  job->total_ = p.next_index();
  job->next_seq_ = std::max<uint64_t>(p.next_seq(), 1);
  job->delivered_seq_ = p.delivered_seq();
  job->done_ = p.done();
  job->ok_ = p.ok();
  job->failed_ = p.failed();
  job->retries_ = p.retries();
  job->rate_wait_ = absl::Milliseconds(p.rate_wait_ms());
  job->body_bytes_ = p.body_bytes();
  for (int i = 0; i < p.outcomes_size() && i < kOutcomeSlots; ++i)
    job->outcomes_[i] = p.outcomes(i);
  for (int i = 0; i < p.status_classes_size() && i < 7; ++i)
    job->status_classes_[i] = p.status_classes(i);
  job->latency_ = LatencyHistogram::Restore(
      {p.latency_buckets().begin(), p.latency_buckets().end()},
      p.latency_count(), p.latency_min_us(), p.latency_max_us());
  for (const v1::FetchResult& result : recovered.results) {
    if (result.seq() >= job->next_seq_) continue;  // not counted: not ours
    job->tail_bytes_ += result.body().size();
    if (result.seq() > job->delivered_seq_)
      job->undelivered_bytes_ += result.body().size();
    job->tail_.push_back(result);
  }
  // A gap (results evicted) means the held tail starts later; what is held
  // must end at next_seq - 1 for ResultAt.
  while (!job->tail_.empty() && job->tail_.back().seq() + 1 != job->next_seq_) {
    job->tail_bytes_ -= job->tail_.back().body().size();
    job->tail_.pop_back();
  }
  for (size_t i = job->tail_.size(); i > 1; --i) {
    if (job->tail_[i - 1].seq() != job->tail_[i - 2].seq() + 1) {
      // Keep only the contiguous run that ends the tail.
      for (size_t j = 0; j + 1 < i; ++j)
        job->tail_bytes_ -= job->tail_[j].body().size();
      job->tail_.erase(job->tail_.begin(), job->tail_.begin() + (i - 1));
      break;
    }
  }
  job->ledger_.Restore(recovered.input);
  DurableMark all = job->Mark();
  job->OnDurable(all);
  return job;
}

void Job::SetStore(JobStore* store, JobJournal* journal) {
  store_ = store;
  journal_ = journal;
  store_->PutJob(Record(), Progress());
  Touch();
}

store::v1::JobRecord Job::Record() const {
  store::v1::JobRecord record;
  record.set_id(id_);
  *record.mutable_options() = options_;
  record.set_owner(owner_);
  record.set_created_unix_ms(created_unix_ms_);
  return record;
}

void Job::WriteChanges() {
  ledger_.Flush(store_, id_);
  if (!unwritten_results_.empty()) {
    store_->PutResults(id_, unwritten_first_seq_, next_seq_ - 1,
                       std::move(unwritten_results_));
    unwritten_results_ = std::string();
  }
  store_->PutProgress(id_, Progress());
}

store::v1::JobProgress Job::Progress() const {
  store::v1::JobProgress p;
  p.set_state(state_);
  p.set_input_closed(input_closed_);
  p.set_lines_received(lines_received_);
  p.set_next_index(next_index_);
  p.set_next_seq(next_seq_);
  p.set_delivered_seq(delivered_seq_);
  p.set_done(done_);
  p.set_ok(ok_);
  p.set_failed(failed_);
  p.set_retries(retries_);
  p.set_rate_wait_ms(absl::ToDoubleMilliseconds(rate_wait_));
  p.set_body_bytes(body_bytes_);
  for (uint64_t n : outcomes_) p.add_outcomes(n);
  for (uint64_t n : status_classes_) p.add_status_classes(n);
  for (uint64_t n : latency_.buckets()) p.add_latency_buckets(n);
  p.set_latency_count(latency_.count());
  p.set_latency_min_us(latency_.min_us());
  p.set_latency_max_us(latency_.max_us());
  if (ended_at_ != absl::InfiniteFuture()) {
    p.set_ended_unix_ms(created_unix_ms_ +
                        absl::ToInt64Milliseconds(ended_at_ - created_));
  }
  return p;
}

DurableMark Job::Mark() const {
  return DurableMark{next_seq_ - 1,
                     lines_received_,
                     next_index_,
                     input_closed_,
                     state_ == v1::JOB_CANCELLED,
                     ended()};
}

void Job::OnDurable(const DurableMark& mark) {
  record_durable_ = true;
  durable_seq_ = std::max(durable_seq_, mark.seq);
  durable_lines_ = std::max(durable_lines_, mark.lines);
  durable_index_ = std::max(durable_index_, mark.index);
  input_close_durable_ = input_close_durable_ || mark.input_closed;
  end_durable_ = end_durable_ || mark.ended;
  if (mark.cancelled && !cancel_durable_) {
    cancel_durable_ = true;
    std::vector<absl::AnyInvocable<void()>> waiters;
    waiters.swap(cancel_waiters_);
    for (auto& done : waiters) done();
  }
}

void Job::WhenCancelDurable(absl::AnyInvocable<void()> done) {
  if (store_ == nullptr || cancel_durable_) {
    done();
    return;
  }
  cancel_waiters_.push_back(std::move(done));
}

void Job::AcceptLine(SpooledLine line) {
  ++total_;
  next_index_ = std::max(next_index_, line.index + 1);
  bool at_front =
      store_ == nullptr || (loaded_index_ == line.index && !loading_ &&
                            pending_.size() < limits_.pending_low_water &&
                            parked_count_ < limits_.parked_max &&
                            undelivered() < limits_.tail_results);
  if (at_front) loaded_index_ = line.index + 1;
  // A bad line at the front is answered now, in the same commit: the ledger
  // then never writes it.
  if (store_ != nullptr) ledger_.Add(line);
  if (at_front) {
    if (line.is_error) {
      AddResult(std::move(line.error));
    } else {
      Enqueue(std::move(line.request));
    }
  }
  Touch();
}

bool Job::WantsInput() const {
  if (input_closed_) return false;
  if (store_ != nullptr) return undurable_lines() < kMaxUndurableLines;
  return pending_.size() < limits_.pending_low_water &&
         parked_count_ < limits_.parked_max &&
         undelivered() < limits_.tail_results;
}

bool Job::WantsLoad() const {
  return store_ != nullptr && !loading_ && loaded_index_ < durable_index_ &&
         pending_.size() < limits_.pending_low_water / 2 &&
         parked_count_ < limits_.parked_max &&
         undelivered() + in_flight_ < limits_.tail_results &&
         undelivered_bytes_ < limits_.tail_bytes;
}

std::pair<uint64_t, uint64_t> Job::BeginLoad() {
  loading_ = true;
  return {loaded_index_, durable_index_};
}

void Job::EndLoad(std::vector<SpooledLine> lines, uint64_t upto, size_t max) {
  loading_ = false;
  loaded_index_ = lines.size() >= max ? lines.back().index + 1 : upto;
  for (SpooledLine& line : lines) {
    if (line.is_error) {
      AddResult(std::move(line.error));
    } else {
      Enqueue(std::move(line.request));
    }
  }
}

void Job::AddRequest(v1::FetchRequest request) {
  ++total_;
  ++next_index_;
  loaded_index_ = next_index_;
  Enqueue(std::move(request));
}

void Job::Enqueue(v1::FetchRequest request) {
  if (state_ == v1::JOB_CANCELLED) {
    v1::FetchResult result;
    result.set_index(request.index());
    result.set_id(request.id());
    result.set_url(request.url());
    result.set_error(v1::ERROR_CANCELLED);
    result.set_error_message("the job was cancelled");
    AddResult(std::move(result));
    return;
  }
  pending_.push_back(std::move(request));
}

Job::~Job() {
  // Leases still out when a job is forgotten no longer count for its owner.
  if (owner_budget_) owner_budget_->in_flight -= in_flight_;
  // A cancel still waiting for its commit is answered: nobody else will.
  for (auto& done : cancel_waiters_) done();
}

void Job::CloseInput() {
  if (input_closed_) return;
  input_closed_ = true;
  MaybeEnd();
  Touch();
}

bool Job::CanDispatch() const {
  if (state_ != v1::JOB_RUNNING || pending_.empty()) return false;
  if (options_.concurrency() > 0 && in_flight_ >= options_.concurrency())
    return false;
  if (owner_budget_ && owner_budget_->full()) return false;
  // Only what no client has received holds dispatch back: delivered results
  // stay in the tail for `watch --from` just while there is room (eviction
  // keeps the held tail within the same limits), so they never stall a job.
  return undelivered() + in_flight_ < limits_.tail_results &&
         undelivered_bytes_ < limits_.tail_bytes;
}

v1::FetchRequest Job::TakePending() {
  v1::FetchRequest request = std::move(pending_.front());
  pending_.pop_front();
  return request;
}

void Job::Park(v1::FetchRequest request) {
  std::string key = request.rate_key();
  parked_[key].push_back(ParkedRequest{clock_->Now(), std::move(request)});
  ++parked_count_;
}

size_t Job::Unpark(const std::string& key, size_t n) {
  auto it = parked_.find(key);
  if (it == parked_.end()) return 0;
  std::deque<ParkedRequest>& queue = it->second;
  size_t moved = std::min(n, queue.size());
  absl::Time now = clock_->Now();
  // Pushed to the front newest first, so the oldest goes out first.
  for (size_t i = moved; i > 0; --i) {
    ParkedRequest& parked = queue[i - 1];
    rate_wait_ += now - parked.since;
    pending_.push_front(std::move(parked.request));
  }
  queue.erase(queue.begin(), queue.begin() + moved);
  parked_count_ -= moved;
  if (queue.empty()) parked_.erase(it);
  return moved;
}

std::vector<std::pair<std::string, size_t>> Job::ParkedCounts() const {
  std::vector<std::pair<std::string, size_t>> counts;
  for (const auto& [key, queue] : parked_)
    counts.emplace_back(key, queue.size());
  return counts;
}

void Job::Requeue(v1::FetchRequest request) {
  if (state_ == v1::JOB_CANCELLED) return;  // Cancel() already answered it
  pending_.push_front(std::move(request));
}

void Job::AddResult(v1::FetchResult result) {
  result.set_seq(next_seq_++);
  ++done_;
  if (result.ok()) {
    ++ok_;
  } else {
    ++failed_;
  }
  if (result.attempts() > 1) retries_ += result.attempts() - 1;
  RecordStats(result);
  rate_wait_ += absl::Milliseconds(result.rate_wait_ms());
  tail_bytes_ += result.body().size();
  undelivered_bytes_ += result.body().size();
  if (store_ != nullptr) {
    ledger_.Answer(result.index());
    if (unwritten_results_.empty()) unwritten_first_seq_ = result.seq();
    AppendResult(result, &unwritten_results_);
  }
  tail_.push_back(std::move(result));
  EvictDelivered();
  MaybeEnd();
  Touch();
}

void Job::RecordStats(const v1::FetchResult& result) {
  // A result without an attempt (a bad line, cancelled before it was sent,
  // refused by an open breaker at once) has no latency to speak of.
  if (result.attempts() > 0) latency_.Record(result.latency_ms());
  int kind = result.ok() ? v1::ERROR_NONE : static_cast<int>(result.error());
  if (kind < 0 || kind >= kOutcomeSlots) kind = kOutcomeSlots - 1;
  ++outcomes_[kind];
  int status = result.status();
  int status_class = status == 0                      ? 0
                     : status >= 100 && status <= 599 ? status / 100
                                                      : 6;
  ++status_classes_[status_class];
  body_bytes_ += result.body_bytes();
}

v1::JobStats Job::Stats() const {
  v1::JobStats stats;
  stats.set_latency_count(latency_.count());
  stats.set_latency_p50_ms(latency_.Percentile(0.50));
  stats.set_latency_p90_ms(latency_.Percentile(0.90));
  stats.set_latency_p99_ms(latency_.Percentile(0.99));
  stats.set_latency_max_ms(latency_.max_ms());
  for (int kind = 0; kind < kOutcomeSlots; ++kind) {
    if (outcomes_[kind] == 0) continue;
    const char* name = kind == v1::ERROR_NONE
                           ? "ok"
                           : ErrorKindName(static_cast<v1::ErrorKind>(kind));
    // A failure without an error kind is a worker's mistake: not hidden.
    if (*name == '\0') name = "unknown";
    (*stats.mutable_outcomes())[name] += outcomes_[kind];
  }
  static constexpr const char* kClasses[] = {"none", "1xx", "2xx",  "3xx",
                                             "4xx",  "5xx", "other"};
  for (int c = 0; c < 7; ++c) {
    if (status_classes_[c] > 0)
      (*stats.mutable_status_classes())[kClasses[c]] = status_classes_[c];
  }
  stats.set_retries(retries_);
  stats.set_rate_wait_s(absl::ToDoubleSeconds(rate_wait_));
  stats.set_body_bytes(body_bytes_);
  return stats;
}

void Job::Cancel() {
  if (ended() || state_ == v1::JOB_CANCELLED) return;
  state_ = v1::JOB_CANCELLED;
  std::deque<v1::FetchRequest> waiting;
  waiting.swap(pending_);
  for (auto& [key, queue] : parked_) {
    for (ParkedRequest& parked : queue)
      waiting.push_back(std::move(parked.request));
  }
  parked_.clear();
  parked_count_ = 0;
  for (v1::FetchRequest& request : waiting) Enqueue(std::move(request));
  MaybeEnd();
  Touch();
}

void Job::MarkDelivered(uint64_t seq) {
  seq = std::min(seq, next_seq_ - 1);
  // Undelivered results are never evicted, so each newly delivered one is
  // still in the tail.
  for (uint64_t s = delivered_seq_ + 1; s <= seq; ++s)
    undelivered_bytes_ -= ResultAt(s).body().size();
  if (seq > delivered_seq_) {
    delivered_seq_ = seq;
    Touch();
  }
  EvictDelivered();
}

void Job::EvictDelivered() {
  // Results sent to a client may still be on their way when its stream
  // breaks (in the transport's buffers): a durable job, whose clients resume
  // from their last seq, keeps the last ones sent a while longer, up to
  // kResumeResults and kResumeBytes beyond its spool.
  constexpr uint64_t kResumeResults = 65536;
  constexpr size_t kResumeBytes = 16 << 20;
  const uint64_t resume_results =
      std::min<uint64_t>(kResumeResults, limits_.tail_results);
  auto resumable = [&](const v1::FetchResult& front) {
    return store_ != nullptr && delivered_seq_ - front.seq() < resume_results &&
           tail_bytes_ - undelivered_bytes_ <= kResumeBytes;
  };
  uint64_t evicted = 0;
  while (!tail_.empty() && tail_.front().seq() <= delivered_seq_ &&
         !resumable(tail_.front()) &&
         (tail_.size() > limits_.tail_results ||
          tail_bytes_ > limits_.tail_bytes)) {
    evicted = tail_.front().seq();
    tail_bytes_ -= tail_.front().body().size();
    tail_.pop_front();
  }
  if (evicted > 0 && store_ != nullptr)
    store_->DeleteResultsThrough(id_, evicted);
}

void Job::MaybeEnd() {
  if (!input_closed_ || done_ < total_ || ended_at_ != absl::InfiniteFuture())
    return;
  if (state_ == v1::JOB_RUNNING) state_ = v1::JOB_DONE;
  ended_at_ = clock_->Now();
}

void Job::RemoveListener(JobListener* listener) {
  listeners_.erase(std::remove(listeners_.begin(), listeners_.end(), listener),
                   listeners_.end());
}

void Job::NotifyListeners() {
  // A listener may remove itself while being notified.
  std::vector<JobListener*> copy = listeners_;
  for (JobListener* listener : copy) listener->OnJobProgress();
}

v1::JobStatus Job::Status() const {
  absl::Time now = std::min(clock_->Now(), ended_at_);
  v1::JobStatus status;
  status.set_job_id(id_);
  status.set_owner(owner_);
  status.set_state(state_);
  status.set_total(total_);
  status.set_input_closed(input_closed_);
  status.set_done(done_);
  status.set_ok(ok_);
  status.set_failed(failed_);
  status.set_retries(retries_);
  status.set_in_flight(in_flight_);
  status.set_pending(pending_.size() + parked_count_);
  status.set_rate_wait_s(absl::ToDoubleSeconds(rate_wait_));
  status.set_elapsed_s(absl::ToDoubleSeconds(now - created_));
  status.set_created_unix_ms(created_unix_ms_);
  status.set_oldest_seq(first_held_seq());
  status.set_durable(store_ != nullptr);
  *status.mutable_stats() = Stats();
  return status;
}

}  // namespace fetchfleet::coordinator
