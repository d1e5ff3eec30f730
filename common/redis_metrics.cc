#include "common/redis_metrics.h"

namespace fetchfleet {

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* const buckets =
      new prometheus::Histogram::BucketBoundaries{
          0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
          0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
  return *buckets;
}

namespace {

prometheus::Family<prometheus::Counter>& Commands(
    prometheus::Registry& registry) {
  return prometheus::BuildCounter()
      .Name("fetchfleet_redis_commands_total")
      .Help(
          "Redis commands sent, by how they ended (unavailable: the "
          "connection was down or was lost before the reply).")
      .Register(registry);
}

}  // namespace

RedisMetrics::RedisMetrics(prometheus::Registry& registry)
    : ok_(Commands(registry).Add({{"result", "ok"}})),
      error_(Commands(registry).Add({{"result", "error"}})),
      unavailable_(Commands(registry).Add({{"result", "unavailable"}})),
      duration_(prometheus::BuildHistogram()
                    .Name("fetchfleet_redis_command_duration_seconds")
                    .Help("Round trip of answered Redis commands.")
                    .Register(registry)
                    .Add({}, LatencyBuckets())) {}

void RedisMetrics::OnCommand(Result result, absl::Duration round_trip) {
  switch (result) {
    case Result::kOk:
      ok_.Increment();
      break;
    case Result::kError:
      error_.Increment();
      break;
    case Result::kUnavailable:
      unavailable_.Increment();
      return;
  }
  duration_.Observe(absl::ToDoubleSeconds(round_trip));
}

}  // namespace fetchfleet
