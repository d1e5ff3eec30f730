// RedisMetrics: a process's Redis round trips as Prometheus metrics:
//   fetchfleet_redis_commands_total{result="ok|error|unavailable"}
//   fetchfleet_redis_command_duration_seconds (histogram; answered commands)
//
// Thread-safe.
#pragma once

#include "common/redis_client.h"
#include "prometheus/counter.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace fetchfleet {

class RedisMetrics final : public RedisStats {
 public:
  explicit RedisMetrics(prometheus::Registry& registry);
  void OnCommand(Result result, absl::Duration round_trip) override;

 private:
  prometheus::Counter& ok_;
  prometheus::Counter& error_;
  prometheus::Counter& unavailable_;
  prometheus::Histogram& duration_;
};

// LatencyBuckets: histogram bounds in seconds from 0.5 ms to 60 s, about
// 2.5x apart, for attempts, waits and round trips alike.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets();

}  // namespace fetchfleet
