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

void Job::AddRequest(v1::FetchRequest request) {
  ++total_;
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
}

void Job::CloseInput() {
  input_closed_ = true;
  MaybeEnd();
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
  tail_.push_back(std::move(result));
  EvictDelivered();
  MaybeEnd();
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
  if (ended()) return;
  state_ = v1::JOB_CANCELLED;
  std::deque<v1::FetchRequest> waiting;
  waiting.swap(pending_);
  for (auto& [key, queue] : parked_) {
    for (ParkedRequest& parked : queue)
      waiting.push_back(std::move(parked.request));
  }
  parked_.clear();
  parked_count_ = 0;
  for (v1::FetchRequest& request : waiting) {
    --total_;  // AddRequest counts it again
    AddRequest(std::move(request));
  }
  MaybeEnd();
}

void Job::MarkDelivered(uint64_t seq) {
  seq = std::min(seq, next_seq_ - 1);
  // Undelivered results are never evicted, so each newly delivered one is
  // still in the tail.
  for (uint64_t s = delivered_seq_ + 1; s <= seq; ++s)
    undelivered_bytes_ -= ResultAt(s).body().size();
  delivered_seq_ = std::max(delivered_seq_, seq);
  EvictDelivered();
}

void Job::EvictDelivered() {
  while (!tail_.empty() && tail_.front().seq() <= delivered_seq_ &&
         (tail_.size() > limits_.tail_results ||
          tail_bytes_ > limits_.tail_bytes)) {
    tail_bytes_ -= tail_.front().body().size();
    tail_.pop_front();
  }
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
  *status.mutable_stats() = Stats();
  return status;
}

}  // namespace fetchfleet::coordinator
