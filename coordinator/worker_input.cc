#include "coordinator/worker_input.h"

#include <algorithm>
#include <cmath>

#include "common/rate_limiter.h"

namespace fetchfleet::coordinator {
namespace {

// A double from the wire: finite, not negative, at most `max`.
double Bounded(double value, double max) {
  if (!std::isfinite(value) || value < 0) return 0;
  return std::min(value, max);
}

}  // namespace

void StampResult(const Lease& lease, const std::string& worker_name,
                 uint64_t body_cap, v1::FetchResult* result) {
  const v1::FetchRequest& request = lease.request;
  result->set_index(request.index());
  result->set_id(request.id());
  result->set_url(request.url());
  result->set_worker(worker_name);
  result->set_seq(0);  // the job numbers it
  if (!v1::ErrorKind_IsValid(result->error())) {
    result->set_error(v1::ERROR_PROTOCOL);
    result->set_error_message("the worker sent an unknown error kind");
  }
  if (result->status() < 0 || result->status() > 999) result->set_status(0);
  result->set_ok(result->error() == v1::ERROR_NONE && result->status() >= 200 &&
                 result->status() <= 299);
  uint32_t max_attempts = std::max<uint32_t>(request.max_attempts(), 1);
  result->set_attempts(std::min(result->attempts(), max_attempts));
  // No attempt outlives the plan: timeouts and backoff, well under a day.
  constexpr double kMaxMs = 24 * 3600 * 1000.0;
  result->set_latency_ms(Bounded(result->latency_ms(), kMaxMs));
  result->set_rate_wait_ms(Bounded(result->rate_wait_ms(), kMaxMs));
  if (result->body().size() > body_cap) {
    result->mutable_body()->resize(body_cap);
    result->set_truncated(true);
  }
  result->set_body_bytes(
      std::max<uint64_t>(result->body_bytes(), result->body().size()));
}

std::string SaneWorkerName(const std::string& name) {
  if (name.empty() || name.size() > kMaxWorkerNameBytes) return "";
  for (unsigned char c : name) {
    if (c <= 0x20 || c >= 0x7f) return "";
  }
  return name;
}

bool BoundBreakerEvent(v1::BreakerEvent* event) {
  if (!CheckRateKey(event->key()).ok()) return false;
  if (!v1::BreakerState_IsValid(event->state())) return false;
  event->set_open_ms(std::min(event->open_ms(), kMaxBreakerOpenMs));
  event->set_failures(std::min(event->failures(), event->calls()));
  return true;
}

}  // namespace fetchfleet::coordinator
