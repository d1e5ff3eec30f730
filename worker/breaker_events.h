// BreakerEvents: a worker's subscription to the fleet's breaker changes
// (Redis pub/sub on kBreakerChannel). Each message updates the worker's
// cached views at once, so every worker stops calling a tripped upstream
// within a round trip of the trip, not at its next Redis call. After a
// reconnect the views are dropped (messages may have been missed) and the
// next Redis replies rebuild them.
//
// Loop thread only (the worker's main loop).
#pragma once

#include "common/event_loop.h"
#include "common/redis_client.h"
#include "worker/breaker_set.h"

namespace fetchfleet::worker {

class BreakerEvents {
 public:
  BreakerEvents(EventLoop* loop, BreakerSet* set, RedisClient::Options options);
  void Start();
  uint64_t received() const { return received_; }
  bool connected() const { return redis_.connected(); }

  // Apply parses one message ("KEY\nstate\nms\nversion") into `set`; false
  // if it is malformed.
  static bool Apply(absl::string_view payload, BreakerSet* set);

 private:
  BreakerSet* const set_;
  RedisClient redis_;
  uint64_t received_ = 0;
};

}  // namespace fetchfleet::worker
