// RedisHashWatcher: a coordinator's copy of one Redis hash that operators and
// other coordinators may change (ff:limits, ff:breakers). It reads the hash
// every `refresh`, and at once after each (re)connect, and hands each read to
// `on_read`. Its connection also carries the owner's writes.
//
// Loop thread only.
#pragma once

#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/event_loop.h"
#include "common/redis_client.h"

namespace fetchfleet::coordinator {

class RedisHashWatcher {
 public:
  using OnRead = absl::AnyInvocable<void(absl::StatusOr<RedisReply>)>;

  RedisHashWatcher(EventLoop* loop, const RedisUrl& url, std::string hash,
                   absl::Duration refresh, OnRead on_read);

  // Start connects and begins the periodic reads.
  void Start();
  RedisClient* client() { return &client_; }

 private:
  void Read();
  void ScheduleRead();

  EventLoop* const loop_;
  const std::string hash_;
  const absl::Duration refresh_;
  OnRead on_read_;
  RedisClient client_;
};

}  // namespace fetchfleet::coordinator
