#include "coordinator/worker_health.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace fetchfleet::coordinator {

ResultClass ClassifyForHealth(const v1::FetchResult& result) {
  switch (result.error()) {
    case v1::ERROR_CONNECT:
    case v1::ERROR_DNS:
    case v1::ERROR_TIMEOUT:
    case v1::ERROR_TLS:
      return ResultClass::kTransportFailure;
    case v1::ERROR_NONE:
    case v1::ERROR_HTTP_STATUS:
    case v1::ERROR_TOO_LARGE:
    case v1::ERROR_PROTOCOL:
      // An answer came, good or bad: the worker reached its upstream.
      return result.status() > 0 ? ResultClass::kReached
                                 : ResultClass::kNeither;
    default:
      // Refused before any call (egress policy, breaker, bad request) or
      // cancelled: nothing about the worker's health.
      return ResultClass::kNeither;
  }
}

WorkerHealth::WorkerHealth(WorkerHealthOptions options) : options_(options) {}

void WorkerHealth::AddWorker(uint64_t worker, std::string name) {
  State& state = workers_[worker];
  // A worker that reconnects does not shed its ejection or probation.
  if (auto it = departed_.find(name); it != departed_.end()) {
    state = std::move(it->second);
    departed_.erase(it);
  }
  state.name = std::move(name);
  state.buckets.assign(
      std::max<int64_t>(absl::ToInt64Seconds(options_.window), 1), Bucket{});
}

void WorkerHealth::RemoveWorker(uint64_t worker) {
  auto it = workers_.find(worker);
  if (it == workers_.end()) return;
  if (it->second.ejected || it->second.on_probation) {
    if (departed_.size() >= kMaxDeparted) departed_.erase(departed_.begin());
    departed_[it->second.name] = std::move(it->second);
  }
  workers_.erase(it);
}

void WorkerHealth::Count(State& state, ResultClass cls, absl::Time now) {
  int64_t second = absl::ToUnixSeconds(now);
  Bucket& bucket =
      state.buckets[static_cast<size_t>(second) % state.buckets.size()];
  if (bucket.second != second) bucket = Bucket{second, 0, 0};
  if (cls == ResultClass::kReached) ++bucket.reached;
  if (cls == ResultClass::kTransportFailure) ++bucket.failed;
}

void WorkerHealth::Sum(const State& state, absl::Time now, uint64_t* reached,
                       uint64_t* failed) const {
  int64_t second = absl::ToUnixSeconds(now);
  for (const Bucket& bucket : state.buckets) {
    if (second - bucket.second >= static_cast<int64_t>(state.buckets.size()))
      continue;
    *reached += bucket.reached;
    *failed += bucket.failed;
  }
}

void WorkerHealth::OnResult(uint64_t worker, const v1::FetchResult& result,
                            absl::Time now) {
  auto it = workers_.find(worker);
  if (it == workers_.end()) return;
  State& state = it->second;
  state.last_completion = now;
  ResultClass cls = ClassifyForHealth(result);
  Count(state, cls, now);
  if (state.on_probation && cls == ResultClass::kReached &&
      ++state.probation_reached >= options_.probation_successes) {
    state.on_probation = false;
    state.healthy_since = now;
    FF_LOG(INFO) << LogField(kLogWorker, state.name)
                 << LogField("health", "healthy") << "worker " << state.name
                 << " is healthy again (" << state.probation_reached
                 << " results reached their upstreams on probation)";
  }
}

void WorkerHealth::OnLeasesExpired(uint64_t worker, size_t n,
                                   absl::Time oldest_granted, absl::Time now) {
  (void)now;
  auto it = workers_.find(worker);
  if (it == workers_.end()) return;
  // A worker that completes other requests is slow, not stuck: its expired
  // leases are dealt again, and it keeps its place.
  if (it->second.last_completion < oldest_granted)
    it->second.stalled_leases += n;
}

size_t WorkerHealth::EjectedCount(absl::Time now) const {
  size_t n = 0;
  for (const auto& [id, state] : workers_) n += state.ejected_until > now;
  return n;
}

void WorkerHealth::Eject(uint64_t worker, State& state, absl::Time now,
                         std::string why) {
  (void)worker;
  ++state.ejections;
  ++ejections_total_;
  absl::Duration period = options_.base_ejection;
  for (int i = 1; i < state.ejections && period < options_.max_ejection; ++i)
    period *= 2;
  period = std::min(period, options_.max_ejection);
  state.ejected_until = now + period;
  state.ejected = true;
  state.on_probation = false;
  state.probation_reached = 0;
  state.stalled_leases = 0;
  for (Bucket& bucket : state.buckets) bucket = Bucket{};
  state.reason = std::move(why);
  FF_LOG(WARNING) << LogField(kLogWorker, state.name)
                  << LogField("health", "ejected")
                  << LogField("ejected_s", absl::ToDoubleSeconds(period))
                  << "worker " << state.name << " ejected for "
                  << absl::FormatDuration(period) << ": " << state.reason
                  << "; it gets no new work until then, then a few leases "
                     "on probation";
}

std::vector<uint64_t> WorkerHealth::Evaluate(absl::Time now) {
  std::vector<uint64_t> changed;
  for (auto& [id, state] : workers_) {
    if (state.ejected && state.ejected_until <= now) {
      state.ejected = false;
      state.on_probation = true;
      state.probation_reached = 0;
      changed.push_back(id);
      FF_LOG(INFO) << LogField(kLogWorker, state.name)
                   << LogField("health", "probation") << "worker " << state.name
                   << " back from ejection, on probation ("
                   << options_.probation_leases << " leases at a time until "
                   << options_.probation_successes
                   << " results reach their upstreams)";
    }
    if (state.ejections > 0 && !state.ejected && !state.on_probation &&
        now - state.healthy_since > options_.max_ejection) {
      state.ejections = 0;  // long healthy: the next ejection starts short
    }
  }
  if (options_.base_ejection <= absl::ZeroDuration()) return changed;  // off
  size_t allowed = static_cast<size_t>(static_cast<double>(workers_.size()) *
                                       options_.max_ejected_fraction);
  allowed = std::min(allowed, workers_.empty() ? 0 : workers_.size() - 1);
  size_t ejected = EjectedCount(now);
  // Totals of the whole fleet, so each worker's baseline is the others'.
  uint64_t fleet_reached = 0, fleet_failed = 0;
  for (const auto& [id, state] : workers_) {
    if (state.ejected_until <= now)
      Sum(state, now, &fleet_reached, &fleet_failed);
  }
  for (auto& [id, state] : workers_) {
    if (state.ejected_until > now) continue;
    std::string why;
    if (state.stalled_leases > 0) {
      why = absl::StrCat("held ", state.stalled_leases,
                         " lease(s) past their deadlines without completing "
                         "a request");
    } else {
      uint64_t reached = 0, failed = 0;
      Sum(state, now, &reached, &failed);
      uint64_t others_reached = fleet_reached - reached;
      uint64_t others_failed = fleet_failed - failed;
      uint64_t mine = reached + failed;
      uint64_t others = others_reached + others_failed;
      size_t needed = state.on_probation ? std::min(options_.min_results,
                                                    options_.probation_leases)
                                         : options_.min_results;
      if (mine >= needed && others >= options_.min_results) {
        double my_ratio = static_cast<double>(failed) / mine;
        double their_ratio = static_cast<double>(others_failed) / others;
        if (my_ratio >= options_.failure_ratio &&
            their_ratio <= my_ratio * options_.fleet_factor) {
          why = absl::StrCat(
              failed, " of its ", mine, " results in the last ",
              absl::FormatDuration(options_.window),
              " failed to reach their upstream (connect, DNS, timeout, TLS); "
              "the rest of the fleet: ",
              others_failed, " of ", others);
        }
      }
    }
    state.stalled_leases = 0;
    if (why.empty()) continue;
    if (ejected >= allowed) {
      FF_LOG(WARNING) << LogField(kLogWorker, state.name)
                      << LogField("health", "ejection_capped") << "worker "
                      << state.name << " would be ejected (" << why << ") but "
                      << ejected
                      << " worker(s) are out already, the most allowed";
      continue;
    }
    Eject(id, state, now, std::move(why));
    ++ejected;
    changed.push_back(id);
  }
  return changed;
}

bool WorkerHealth::Ejected(uint64_t worker, absl::Time now) const {
  auto it = workers_.find(worker);
  return it != workers_.end() && it->second.ejected_until > now;
}

bool WorkerHealth::MayTake(uint64_t worker, size_t leases,
                           absl::Time now) const {
  auto it = workers_.find(worker);
  if (it == workers_.end()) return true;
  const State& state = it->second;
  if (state.ejected_until > now) return false;
  return !state.on_probation || leases < options_.probation_leases;
}

void WorkerHealth::Fill(uint64_t worker, absl::Time now, int64_t now_unix_ms,
                        v1::WorkerInfo* info) const {
  auto it = workers_.find(worker);
  if (it == workers_.end()) return;
  const State& state = it->second;
  if (state.ejected_until > now) {
    info->set_ejected(true);
    info->set_ejected_until_unix_ms(
        now_unix_ms + absl::ToInt64Milliseconds(state.ejected_until - now));
    info->set_ejected_reason(state.reason);
  } else if (state.on_probation) {
    info->set_ejected_reason(
        absl::StrCat("on probation after: ", state.reason));
  }
}

}  // namespace fetchfleet::coordinator
