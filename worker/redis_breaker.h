// RedisCircuitBreaker: a fetch shard's handle on the fleet's shared breakers
// in Redis (common/breaker_scripts.h).
//
//   Admit:    the cached view (BreakerSet) answers closed and open at once;
//             only when an open period is over does it go to Redis, to claim
//             the one probe (SET NX PX) — one claim in flight per key, and
//             after a refusal none for 100 ms;
//   Record:   outcomes are summed per key and sent every 100 ms in one script
//             call, which slides the window and trips the breaker; its reply
//             refreshes the view;
//   ProbeDone: closes or re-opens (period doubled, capped).
// Every reply that changed the state is reported once, by this shard.
//
// While Redis is unreachable the worker's own local breakers decide (so a dead
// upstream is still cut off, per worker). Loop thread only.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/event_loop.h"
#include "common/redis_client.h"
#include "worker/breaker_set.h"
#include "worker/circuit_breaker.h"

namespace fetchfleet::worker {

// The scripts' replies (common/breaker_scripts.h) into the view, apart from
// the connection so that any reply can be fed to them. A malformed reply
// changes nothing and gives false (nullopt); a change the reply says this
// caller caused is reported.
//
// ApplyAdmitReply: the admission an admit reply gives (`probe_id` for the
// probe; another's probe out: ask again within `claim_backoff`).
std::optional<Breaker::Admission> ApplyAdmitReply(
    absl::string_view key, const RedisReply& reply, absl::Time now,
    absl::Duration probe_ttl, absl::Duration claim_backoff, uint64_t probe_id,
    BreakerSet* set);
// ApplyRecordReply: one key's entry of a record reply.
bool ApplyRecordReply(absl::string_view key, const RedisReply& reply,
                      BreakerSet* set);
// ApplyProbeDoneReply: a probe_done reply.
bool ApplyProbeDoneReply(absl::string_view key, const RedisReply& reply,
                         BreakerSet* set);

class RedisCircuitBreaker final : public CircuitBreaker {
 public:
  struct Options {
    RedisClient::Options redis;
    std::string worker_name;
    absl::Duration flush_interval = absl::Milliseconds(100);
    absl::Duration claim_backoff = absl::Milliseconds(100);
  };

  RedisCircuitBreaker(EventLoop* loop, BreakerSet* set, Options options);
  ~RedisCircuitBreaker() override;

  void Start() { redis_.Start(); }

  void Admit(absl::string_view key, absl::Duration probe_ttl,
             Admitted done) override;
  void Record(absl::string_view key, CallOutcome outcome) override;
  void ProbeDone(absl::string_view key, uint64_t token, bool success) override;
  BreakerConfig Config(absl::string_view key) override {
    return set_->Config(key);
  }
  bool Closed(absl::string_view key) override {
    return redis_.connected() ? set_->ViewClosed(key) : set_->LocalClosed(key);
  }
  bool Holding(absl::string_view key) override {
    return redis_.connected() ? set_->ViewHolding(key)
                              : set_->LocalHolding(key);
  }

  uint64_t redis_calls() const { return redis_calls_; }
  bool redis_connected() const { return redis_.connected(); }

 private:
  struct Counts {
    int64_t successes = 0;
    int64_t failures = 0;
  };
  void Flush();
  // ProbeToken: a probe's claim in Redis, from its id.
  std::string ProbeToken(uint64_t id) const;

  EventLoop* const loop_;
  BreakerSet* const set_;
  const Options options_;
  RedisClient redis_;
  absl::flat_hash_map<std::string, Counts> pending_;
  EventLoop::TimerId flush_timer_ = 0;
  absl::flat_hash_set<std::string> claiming_;
  uint64_t next_probe_ = 1;
  uint64_t redis_calls_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace fetchfleet::worker
