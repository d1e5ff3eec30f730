// LimitRegistry: where the fleet's rate limits are kept. With --redis they
// live in one Redis hash, `ff:limits` (field: rate key, value: "R B"), so they
// outlive the coordinator and every coordinator sees the same ones; without
// Redis, in this process. Either way the scheduler gets the whole table
// (Scheduler::SetLimits), which it pushes to every worker.
//
// The registry re-reads the hash every few seconds (a limit set by another
// coordinator, or by hand, shows up), and restores it when Redis has lost it
// (a Redis restarted without persistence): a sentinel field tells "no limits"
// from "no hash".
//
// Loop thread only.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/event_loop.h"
#include "common/rate_limiter.h"
#include "common/redis_client.h"
#include "coordinator/redis_hash_watcher.h"
#include "coordinator/scheduler.h"

namespace fetchfleet::coordinator {

class LimitRegistry {
 public:
  LimitRegistry(EventLoop* loop, Scheduler* scheduler,
                std::optional<RedisUrl> redis,
                absl::Duration refresh = absl::Seconds(2));

  void Start();
  using Done = absl::AnyInvocable<void(absl::Status)>;
  // Set stores `limit` for `key`; `done` runs once it is stored.
  void Set(const std::string& key, RateLimit limit, Done done);
  // Delete removes `key`'s limit; NotFound when it had none.
  void Delete(const std::string& key, Done done);
  // With --redis: whether its connection is up (loop thread).
  bool redis_connected() {
    return store_ != nullptr && store_->client()->connected();
  }

 private:
  void OnLoaded(absl::StatusOr<RedisReply> reply);
  void Install(std::map<std::string, RateLimit> limits);

  Scheduler* const scheduler_;
  std::unique_ptr<RedisHashWatcher> store_;  // with --redis
  std::map<std::string, RateLimit> limits_;
};

}  // namespace fetchfleet::coordinator
