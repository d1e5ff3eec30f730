#include "coordinator/breaker_reports.h"

#include "common/logging.h"

namespace fetchfleet::coordinator {

void BreakerReports::CountOpen(const std::string& key, bool configured) {
  ++opens_total_;
  auto it = opens_.find(key);
  if (it != opens_.end()) {
    ++it->second;
    return;
  }
  if (configured && opens_.size() < kMaxKeys) opens_[key] = 1;
}

void BreakerReports::OnEvent(const std::string& worker,
                             const v1::BreakerEvent& event, bool configured) {
  // Each change is reported by the one worker whose call made it, so this
  // logs once per change, fleet-wide.
  ++changes_;
  if (reports_.size() >= kMaxKeys && reports_.count(event.key()) == 0) {
    // A crawl over many hosts: forget the closed ones (listing without Redis
    // only; every change is still logged and counted).
    for (auto it = reports_.begin(); it != reports_.end();) {
      if (it->second.event.state() == v1::BREAKER_CLOSED) {
        it = reports_.erase(it);
      } else {
        ++it;
      }
    }
  }
  Report& report = reports_[event.key()];
  report.event = event;
  report.at = clock_->Now();
  report.at_unix_ms = absl::ToUnixMillis(WallNow());
  switch (event.state()) {
    case v1::BREAKER_OPEN:
      ++report.opened;
      CountOpen(event.key(), configured);
      if (event.calls() > 0) {
        FF_LOG(WARNING) << LogField(kLogKey, event.key())
                        << LogField(kLogWorker, worker)
                        << LogField("breaker", "open") << "breaker "
                        << event.key() << " opened: " << event.failures()
                        << " of " << event.calls()
                        << " calls failed in the window, on "
                        << event.failing_workers() << " worker(s); open for "
                        << event.open_ms() << " ms (tripped by " << worker
                        << ")";
      } else {
        FF_LOG(WARNING) << LogField(kLogKey, event.key())
                        << LogField(kLogWorker, worker)
                        << LogField("breaker", "open") << "breaker "
                        << event.key()
                        << " re-opened: the probe failed; open for "
                        << event.open_ms() << " ms (probe by " << worker << ")";
      }
      break;
    case v1::BREAKER_HALF_OPEN:
      FF_LOG(INFO) << LogField(kLogKey, event.key())
                   << LogField(kLogWorker, worker)
                   << LogField("breaker", "half_open") << "breaker "
                   << event.key() << " half-open: " << worker
                   << " sends the one probe";
      break;
    default:
      FF_LOG(INFO) << LogField(kLogKey, event.key())
                   << LogField(kLogWorker, worker)
                   << LogField("breaker", "closed") << "breaker " << event.key()
                   << " closed: the probe succeeded (" << worker << ")";
  }
}

}  // namespace fetchfleet::coordinator
