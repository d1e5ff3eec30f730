// BreakerRegistry: the fleet's breaker settings and the operator's view of
// the breakers.
//
// Settings: with --redis in one Redis hash, `ff:breakers` (field: rate key,
// value: the settings), shared by coordinators and re-read every few seconds;
// without Redis, in this process. Either way the scheduler pushes the whole
// table to every worker (keys not in it use the defaults).
//
// State: with Redis, List reads each breaker's hash (common/breaker_scripts.h)
// — the fleet's one truth; Reset deletes it and publishes the change. Without
// Redis, each worker has its own breakers and List shows the last change the
// workers reported. Reset also tells every worker to forget its local state.
//
// Loop thread only.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "common/breaker.h"
#include "common/event_loop.h"
#include "common/redis_client.h"
#include "coordinator/redis_hash_watcher.h"
#include "coordinator/scheduler.h"

namespace fetchfleet::coordinator {

class BreakerRegistry {
 public:
  BreakerRegistry(EventLoop* loop, Scheduler* scheduler,
                  std::optional<RedisUrl> redis,
                  absl::Duration refresh = absl::Seconds(2));

  void Start();
  using Done = absl::AnyInvocable<void(absl::Status)>;
  void Set(const std::string& key, BreakerConfig config, Done done);
  // Reset closes `key`'s breaker fleet-wide; NotFound when the fleet has
  // neither state nor settings for it.
  void Reset(const std::string& key, Done done);
  using Listed =
      absl::AnyInvocable<void(absl::StatusOr<v1::ListBreakersResponse>)>;
  void List(Listed done);

  bool in_redis() const { return store_ != nullptr; }

 private:
  void OnLoaded(absl::StatusOr<RedisReply> reply);
  void Install(std::map<std::string, BreakerConfig> configs);
  // BaseInfo: the key and its settings.
  v1::BreakerInfo BaseInfo(const std::string& key) const;
  v1::BreakerInfo LocalInfo(const std::string& key) const;
  // Scan collects the rate keys that have breaker state in Redis.
  void Scan(
      std::string cursor, std::vector<std::string> found,
      absl::AnyInvocable<void(absl::StatusOr<std::vector<std::string>>)> done);
  void ReadStates(std::vector<std::string> keys, Listed done);

  Scheduler* const scheduler_;
  std::unique_ptr<RedisHashWatcher> store_;  // with --redis
  std::map<std::string, BreakerConfig> configs_;
};

}  // namespace fetchfleet::coordinator
