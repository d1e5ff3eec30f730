#include "common/outcome_counters.h"

#include "common/result_json.h"

namespace fetchfleet {
namespace {

int ClassIndex(int http_status) {
  if (http_status == 0) return 0;
  if (http_status >= 100 && http_status < 600) return http_status / 100;
  return 6;
}

}  // namespace

const char* StatusClass(int http_status) {
  static const char* const kNames[] = {"none", "1xx", "2xx",  "3xx",
                                       "4xx",  "5xx", "other"};
  return kNames[ClassIndex(http_status)];
}

const char* OutcomeName(v1::ErrorKind error) {
  return error == v1::ERROR_NONE ? "ok" : ErrorKindName(error);
}

prometheus::Counter& OutcomeCounters::Get(v1::ErrorKind error,
                                          int http_status) {
  int outcome = (error >= 0 && error < kOutcomes - 1) ? error : kOutcomes - 1;
  std::atomic<prometheus::Counter*>& cell =
      cells_[outcome * kClasses + ClassIndex(http_status)];
  prometheus::Counter* counter = cell.load(std::memory_order_acquire);
  if (counter != nullptr) return *counter;
  std::lock_guard<std::mutex> lock(mu_);
  counter = cell.load(std::memory_order_acquire);
  if (counter == nullptr) {
    const char* name = outcome == kOutcomes - 1
                           ? "unknown"
                           : OutcomeName(static_cast<v1::ErrorKind>(outcome));
    counter = &family_->Add(
        {{"outcome", name}, {"status_class", StatusClass(http_status)}});
    cell.store(counter, std::memory_order_release);
  }
  return *counter;
}

}  // namespace fetchfleet
