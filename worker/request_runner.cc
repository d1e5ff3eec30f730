#include "worker/request_runner.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/request_parser.h"
#include "common/wire_limits.h"

namespace fetchfleet::worker {
namespace {

// A request waiting at an open breaker looks again at least this often: the
// cached view may have closed since (a probe elsewhere succeeded).
constexpr absl::Duration kBreakerRecheck = absl::Milliseconds(250);
// A probe that reports nothing for its timeout plus this is presumed lost.
constexpr absl::Duration kProbeSlack = absl::Seconds(2);
// Idle retry budgets are dropped once there are more than this many keys.
constexpr size_t kBudgetPruneAbove = 4096;

FetchObserver* NoObserver() {
  static FetchObserver* const none = new FetchObserver();
  return none;
}

}  // namespace

RequestRunner::RequestRunner(EventLoop* loop, CurlFetcher* fetcher,
                             RateLimiter* limiter, CircuitBreaker* breaker,
                             BackoffConfig backoff, std::string worker_name,
                             Complete on_complete, FetchObserver* observer)
    : loop_(loop),
      fetcher_(fetcher),
      limiter_(limiter),
      breaker_(breaker),
      backoff_(backoff),
      worker_name_(std::move(worker_name)),
      on_complete_(std::move(on_complete)),
      observer_(observer != nullptr ? observer : NoObserver()) {}

RequestRunner::~RequestRunner() {
  *alive_ = false;
  CancelAll();
}

void BoundAssignment(v1::Assignment* assignment) {
  v1::FetchRequest* request = assignment->mutable_request();
  uint64_t cap = assignment->body_cap_bytes();
  assignment->set_body_cap_bytes(
      cap == 0 ? kDefaultBodyCapBytes
               : std::min<uint64_t>(cap, kMaxBodyCapBytes));
  if (request->max_attempts() == 0)
    request->set_max_attempts(kDefaultMaxAttempts);
  request->set_max_attempts(
      std::min(request->max_attempts(), kMaxAttemptsLimit));
  if (request->timeout_ms() == 0) request->set_timeout_ms(kDefaultTimeoutMs);
  request->set_timeout_ms(std::min(request->timeout_ms(), kMaxTimeoutMs));
  assignment->set_breaker_wait_ms(
      std::min(assignment->breaker_wait_ms(), kMaxTimeoutMs));
}

void RequestRunner::Add(v1::Assignment assignment) {
  BoundAssignment(&assignment);
  auto task = std::make_unique<Task>();
  task->lease_id = assignment.lease_id();
  task->request = std::move(*assignment.mutable_request());
  task->settings.include_headers = assignment.include_headers();
  task->settings.body_cap_bytes = assignment.body_cap_bytes();
  if (!task->request.traceparent().empty()) {
    // Validated by the coordinator; a value that does not parse is dropped
    // rather than sent on.
    absl::StatusOr<TraceContext> trace = ParseTraceparent(
        task->request.traceparent(), task->request.tracestate());
    if (trace.ok()) {
      task->traced = true;
      task->trace = *std::move(trace);
    }
  }
  if (assignment.breaker_wait_ms() > 0) {
    task->breaker_deadline =
        loop_->Now() + absl::Milliseconds(assignment.breaker_wait_ms());
  }
  Task* raw = task.get();
  auto [it, inserted] = tasks_.emplace(raw->lease_id, std::move(task));
  if (!inserted)
    return;  // the coordinator never sends a lease twice; ignore if it did
  CheckBreaker(raw);
}

void RequestRunner::CheckBreaker(Task* task) {
  uint64_t lease_id = task->lease_id;
  absl::Duration probe_ttl =
      absl::Milliseconds(task->request.timeout_ms()) + kProbeSlack;
  breaker_->Admit(
      task->request.rate_key(), probe_ttl,
      [this, alive = alive_, lease_id](Breaker::Admission admission) {
        if (!*alive) return;
        auto it = tasks_.find(lease_id);
        if (it == tasks_.end()) return;  // cancelled meanwhile
        Task* t = it->second.get();
        if (admission.verdict == Breaker::Verdict::kRefuse) {
          OnRefused(t, admission.retry_at);
          return;
        }
        t->probe_token = admission.probe_token;
        WaitForSlot(t);
      });
}

void RequestRunner::OnRefused(Task* task, absl::Time retry_at) {
  absl::Time now = loop_->Now();
  if (now < task->breaker_deadline) {
    // Wait, burning nothing, and look again when the open period ends (or
    // sooner: the view may change), within the request's deadline.
    absl::Time next =
        std::min({retry_at, now + kBreakerRecheck, task->breaker_deadline});
    uint64_t lease_id = task->lease_id;
    task->timer = loop_->RunAfter(std::max(next - now, absl::Milliseconds(1)),
                                  [this, lease_id] {
                                    auto found = tasks_.find(lease_id);
                                    if (found == tasks_.end()) return;
                                    found->second->timer = 0;
                                    CheckBreaker(found->second.get());
                                  });
    return;
  }
  ++refused_;
  observer_->OnBreakerRefused(task->request);
  AttemptResult refused;
  refused.outcome.error = v1::ERROR_CIRCUIT_OPEN;
  // Refused after attempts: the result's latency is the last attempt's (a
  // refusal takes no time; 0 would pull the job's percentiles down).
  refused.latency_ms = task->last_latency_ms;
  const std::string& key = task->request.rate_key();
  if (task->breaker_deadline != absl::InfinitePast()) {
    refused.error_message =
        absl::StrCat("circuit breaker for ", key,
                     " stayed open for as long as the request could wait");
  } else if (retry_at > now) {
    refused.error_message =
        absl::StrFormat("circuit breaker for %s is open (next probe in %.1f s)",
                        key, absl::ToDoubleSeconds(retry_at - now));
  } else {
    refused.error_message = absl::StrCat("circuit breaker for ", key,
                                         " is half-open (its probe is out)");
  }
  Finish(task, std::move(refused));
}

void RequestRunner::WaitForSlot(Task* task) {
  uint64_t lease_id = task->lease_id;
  absl::Time asked = loop_->Now();
  bool outer = in_reserve_;
  in_reserve_ = true;
  limiter_->Reserve(task->request.rate_key(), [this, alive = alive_, lease_id,
                                               asked](absl::Duration delay) {
    if (!*alive) return;
    auto it = tasks_.find(lease_id);
    if (it == tasks_.end()) return;  // cancelled while waiting for its slot
    Task* t = it->second.get();
    if (delay == absl::InfiniteDuration()) {
      // Handed back: the key's breaker opened while this waited for a slot.
      CheckBreaker(t);
      return;
    }
    // A grant made inside Reserve (unlimited keys, the local limiter) waited
    // only its delay; reading the clock twice would add noise per request.
    absl::Duration waited = std::max(delay, absl::ZeroDuration());
    if (!in_reserve_) waited += loop_->Now() - asked;
    t->rate_wait += waited;
    t->attempt_rate_wait += waited;
    if (delay <= absl::ZeroDuration()) {
      StartAttempt(t);
      return;
    }
    absl::Time due = loop_->Now() + delay;
    t->timer = loop_->RunAfter(delay, [this, lease_id, due] {
      auto found = tasks_.find(lease_id);
      if (found == tasks_.end()) return;
      Task* task = found->second.get();
      task->timer = 0;
      // A loop that stalled past many slots must not start them all at
      // once: a burst the limit never granted. A slot missed by this much
      // is given up and the request asks for a new one.
      if (loop_->Now() - due > kMaxSlotLateness) {
        ++missed_slots_;
        WaitForSlot(task);
        return;
      }
      StartAttempt(task);
    });
  });
  in_reserve_ = outer;
}

void RequestRunner::StartAttempt(Task* task) {
  if (task->probe_token == 0 && !breaker_->Closed(task->request.rate_key())) {
    // The breaker opened while this request waited for its slot: the slot is
    // lost, the attempt is not.
    CheckBreaker(task);
    return;
  }
  if (task->attempts == 0)
    BudgetFor(task->request.rate_key()).OnFirstAttempt(loop_->Now());
  ++task->attempts;
  if (task->traced) {
    // Each attempt is its own span; the upstream sees it as the parent.
    TraceContext attempt = task->trace;
    attempt.span_id = task->attempt_span_id = NewSpanId();
    task->settings.traceparent = FormatTraceparent(attempt);
    task->settings.tracestate = task->trace.tracestate;
  }
  uint64_t lease_id = task->lease_id;
  task->fetch = fetcher_->Start(task->request, task->settings,
                                [this, lease_id](AttemptResult r) {
                                  OnAttemptDone(lease_id, std::move(r));
                                });
}

void RequestRunner::OnAttemptDone(uint64_t lease_id, AttemptResult attempt) {
  auto it = tasks_.find(lease_id);
  if (it == tasks_.end()) return;
  Task* task = it->second.get();
  task->fetch = 0;
  task->last_latency_ms = attempt.latency_ms;
  const AttemptOutcome& outcome = attempt.outcome;
  const std::string& key = task->request.rate_key();
  CallOutcome call = ClassifyForBreaker(
      outcome, absl::Milliseconds(attempt.latency_ms), breaker_->Config(key));
  bool probe = task->probe_token != 0;
  if (probe) {
    // The probe's answer decides the half-open breaker: anything but a
    // failure means the upstream is back.
    breaker_->ProbeDone(key, task->probe_token, call != CallOutcome::kFailure);
    task->probe_token = 0;
  } else {
    breaker_->Record(key, call);
  }
  if (outcome.retry_after > absl::ZeroDuration() &&
      (outcome.http_status == 429 || outcome.http_status == 503)) {
    // The upstream named a time: the whole fleet waits for it, not just this
    // request.
    limiter_->Pause(task->request.rate_key(),
                    std::min(outcome.retry_after, backoff_.max_retry_after));
  }
  bool retry = IsRetryable(attempt.outcome) &&
               task->attempts < task->request.max_attempts() &&
               BudgetFor(key).TryRetry(loop_->Now());
  observer_->OnAttemptDone(AttemptReport{
      .request = task->request,
      .attempt = task->attempts,
      .result = attempt,
      .rate_wait = task->attempt_rate_wait,
      .probe = probe,
      .will_retry = retry,
      .trace = task->traced ? &task->trace : nullptr,
      .span_id = task->attempt_span_id,
  });
  task->attempt_rate_wait = absl::ZeroDuration();
  if (IsRetryable(attempt.outcome) &&
      task->attempts < task->request.max_attempts()) {
    if (retry) {
      absl::Duration delay =
          RetryDelay(task->attempts, attempt.outcome, backoff_, gen_);
      task->timer = loop_->RunAfter(delay, [this, lease_id] {
        auto found = tasks_.find(lease_id);
        if (found == tasks_.end()) return;
        found->second->timer = 0;
        CheckBreaker(found->second.get());
      });
      return;
    }
    ++retries_denied_;
    observer_->OnRetryDenied(task->request);
    absl::StrAppend(&attempt.error_message, " (no retry: the retry budget of ",
                    key, " is spent)");
  }
  Finish(task, std::move(attempt));
}

RetryBudget& RequestRunner::BudgetFor(const std::string& key) {
  auto it = budgets_.find(key);
  if (it != budgets_.end()) return it->second;
  if (budgets_.size() > kBudgetPruneAbove) {
    absl::Time now = loop_->Now();
    for (auto b = budgets_.begin(); b != budgets_.end();) {
      if (b->second.Idle(now)) {
        budgets_.erase(b++);
      } else {
        ++b;
      }
    }
  }
  return budgets_[key];
}

void RequestRunner::Finish(Task* task, AttemptResult attempt) {
  uint64_t lease_id = task->lease_id;
  v1::FetchResult result;
  result.set_index(task->request.index());
  result.set_id(task->request.id());
  result.set_url(task->request.url());
  result.set_status(attempt.outcome.http_status);
  result.set_ok(attempt.outcome.error == v1::ERROR_NONE);
  result.set_attempts(task->attempts);
  result.set_latency_ms(attempt.latency_ms);
  result.set_body_bytes(attempt.body_bytes);
  result.set_body(std::move(attempt.body));
  result.set_truncated(attempt.truncated);
  result.set_error(attempt.outcome.error);
  if (attempt.outcome.error != v1::ERROR_NONE) {
    result.set_error_message(
        task->attempts > 1 ? absl::StrCat(attempt.error_message, " (after ",
                                          task->attempts, " attempts)")
                           : attempt.error_message);
  }
  for (v1::Header& header : attempt.headers)
    *result.add_headers() = std::move(header);
  result.set_worker(worker_name_);
  result.set_rate_wait_ms(absl::ToDoubleMilliseconds(task->rate_wait));
  observer_->OnRequestDone(task->request, result);
  tasks_.erase(lease_id);
  ++completed_;
  on_complete_(lease_id, std::move(result));
}

void RequestRunner::Stop(Task* task) {
  if (task->fetch != 0) fetcher_->Abort(task->fetch);
  if (task->timer != 0) loop_->CancelTimer(task->timer);
}

void RequestRunner::Cancel(uint64_t lease_id) {
  auto it = tasks_.find(lease_id);
  if (it == tasks_.end()) return;
  Stop(it->second.get());
  tasks_.erase(it);
}

void RequestRunner::CancelAll() {
  for (auto& [id, task] : tasks_) Stop(task.get());
  tasks_.clear();
}

std::vector<uint64_t> RequestRunner::ReleaseUnstarted() {
  std::vector<uint64_t> released;
  for (auto& [id, task] : tasks_) {
    if (task->attempts == 0) released.push_back(id);
  }
  for (uint64_t id : released) Cancel(id);
  return released;
}

}  // namespace fetchfleet::worker
