#include "worker/redis_breaker.h"

#include "absl/strings/str_cat.h"
#include "common/breaker_scripts.h"

namespace fetchfleet::worker {
namespace {

// Probe ids of Redis probes carry this bit; the local breakers' do not.
constexpr uint64_t kRedisProbe = uint64_t{1} << 63;

Breaker::Admission Call() { return Breaker::Admission{}; }

Breaker::Admission Refuse(absl::Time retry_at) {
  Breaker::Admission admission;
  admission.verdict = Breaker::Verdict::kRefuse;
  admission.retry_at = retry_at;
  return admission;
}

// A script reply's {state, remaining_ms, ...}, and its version (the stamp of
// the change it reports) at `version_at`.
bool ReadState(const RedisReply& reply, size_t version_at, std::string* state,
               absl::Duration* remaining, int64_t* version) {
  if (reply.type != RedisReply::Type::kArray ||
      reply.elements.size() <= version_at)
    return false;
  *state = reply.elements[0].str;
  *remaining = absl::Milliseconds(reply.elements[1].integer);
  *version = reply.elements[version_at].integer;
  return true;
}

v1::BreakerEvent Event(absl::string_view key, BreakerState state,
                       int64_t open_ms) {
  v1::BreakerEvent event;
  event.set_key(std::string(key));
  event.set_state(BreakerStateToProto(state));
  event.set_open_ms(static_cast<uint64_t>(std::max<int64_t>(open_ms, 0)));
  return event;
}

}  // namespace

std::optional<Breaker::Admission> ApplyAdmitReply(
    absl::string_view key, const RedisReply& reply, absl::Time now,
    absl::Duration probe_ttl, absl::Duration claim_backoff, uint64_t probe_id,
    BreakerSet* set) {
  std::string state;
  absl::Duration remaining;
  int64_t version = 0;
  if (!ReadState(reply, 3, &state, &remaining, &version)) return std::nullopt;
  if (state == "probe") {
    set->SetView(key, BreakerState::kHalfOpen, probe_ttl, version);
    if (reply.elements[2].integer == 1)
      set->Report(Event(key, BreakerState::kHalfOpen, 0));
    Breaker::Admission admission;
    admission.verdict = Breaker::Verdict::kProbe;
    admission.probe_token = probe_id;
    return admission;
  }
  if (state == "open") {
    set->SetView(key, BreakerState::kOpen, remaining, version);
    return Refuse(now + remaining);
  }
  if (state == "half_open") {
    // Someone else's probe is out: ask again after the back-off (or sooner,
    // when its claim runs out).
    absl::Duration wait = std::min(remaining, claim_backoff);
    set->SetView(key, BreakerState::kHalfOpen, wait, version);
    return Refuse(now + wait);
  }
  set->SetView(key, BreakerState::kClosed, absl::ZeroDuration(), version);
  return Call();
}

bool ApplyRecordReply(absl::string_view key, const RedisReply& reply,
                      BreakerSet* set) {
  std::string state;
  absl::Duration remaining;
  int64_t version = 0;
  if (!ReadState(reply, 7, &state, &remaining, &version)) return false;
  set->SetView(key, ParseBreakerState(state), remaining, version);
  if (reply.elements[2].integer == 1) {
    v1::BreakerEvent event =
        Event(key, BreakerState::kOpen, reply.elements[6].integer);
    event.set_calls(static_cast<uint64_t>(reply.elements[3].integer));
    event.set_failures(static_cast<uint64_t>(reply.elements[4].integer));
    event.set_failing_workers(static_cast<uint32_t>(reply.elements[5].integer));
    set->Report(std::move(event));
  }
  return true;
}

bool ApplyProbeDoneReply(absl::string_view key, const RedisReply& reply,
                         BreakerSet* set) {
  std::string state;
  absl::Duration remaining;
  int64_t version = 0;
  if (!ReadState(reply, 3, &state, &remaining, &version)) return false;
  BreakerState parsed = ParseBreakerState(state);
  set->SetView(key, parsed, remaining, version);
  if (reply.elements[2].integer == 1)
    set->Report(Event(key, parsed, absl::ToInt64Milliseconds(remaining)));
  return true;
}

RedisCircuitBreaker::RedisCircuitBreaker(EventLoop* loop, BreakerSet* set,
                                         Options options)
    : loop_(loop),
      set_(set),
      options_(std::move(options)),
      redis_(loop, options_.redis) {}

RedisCircuitBreaker::~RedisCircuitBreaker() {
  *alive_ = false;
  if (flush_timer_ != 0) loop_->CancelTimer(flush_timer_);
}

void RedisCircuitBreaker::Admit(absl::string_view key, absl::Duration probe_ttl,
                                Admitted done) {
  if (!redis_.connected()) {
    done(set_->AdmitLocal(key, probe_ttl));
    return;
  }
  std::optional<BreakerSet::View> view = set_->GetView(key);
  if (!view || view->state == BreakerState::kClosed) {
    done(Call());
    return;
  }
  // Open: `until` ends the period. Half-open: another probe is out, and
  // `until` is when to ask Redis again.
  absl::Time now = loop_->Now();
  if (now < view->until) {
    done(Refuse(view->until));
    return;
  }
  // Ask Redis for the probe, one claim at a time.
  std::string k(key);
  if (claiming_.contains(k)) {
    done(Refuse(now + options_.claim_backoff));
    return;
  }
  claiming_.insert(k);
  uint64_t id = kRedisProbe | next_probe_++;
  ++redis_calls_;
  redis_.EvalSha(
      BreakerAdmitScript(), {BreakerStateKey(k), BreakerProbeKey(k)},
      {ProbeToken(id), absl::StrCat(absl::ToInt64Milliseconds(probe_ttl)), k},
      [this, alive = alive_, k, id, probe_ttl,
       done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        if (!*alive) return;
        claiming_.erase(k);
        std::optional<Breaker::Admission> admission;
        if (reply.ok()) {
          admission = ApplyAdmitReply(k, *reply, loop_->Now(), probe_ttl,
                                      options_.claim_backoff, id, set_);
        }
        done(admission ? *admission : set_->AdmitLocal(k, probe_ttl));
      });
}

std::string RedisCircuitBreaker::ProbeToken(uint64_t id) const {
  return absl::StrCat(options_.worker_name, "/", id);
}

void RedisCircuitBreaker::Record(absl::string_view key, CallOutcome outcome) {
  if (outcome == CallOutcome::kIgnored) return;
  Counts& counts = pending_[key];
  if (outcome == CallOutcome::kFailure) {
    ++counts.failures;
  } else {
    ++counts.successes;
  }
  if (flush_timer_ == 0) {
    flush_timer_ = loop_->RunAfter(options_.flush_interval, [this] {
      flush_timer_ = 0;
      Flush();
    });
  }
}

void RedisCircuitBreaker::Flush() {
  absl::flat_hash_map<std::string, Counts> pending;
  pending.swap(pending_);
  if (!redis_.connected()) {
    for (auto& [key, counts] : pending)
      set_->RecordLocal(key, counts.successes, counts.failures);
    return;
  }
  // One script call per kRecordBatch keys: a crawl over many hosts costs
  // Redis a few calls a second per fetch loop, not one per host.
  constexpr size_t kRecordBatch = 128;
  int64_t live = set_->live_workers();
  std::vector<std::pair<std::string, Counts>> batch;
  std::vector<std::string> keys;
  std::vector<std::string> args;
  auto send = [&] {
    if (batch.empty()) return;
    ++redis_calls_;
    redis_.EvalSha(
        BreakerRecordScript(), std::move(keys), std::move(args),
        [this, alive = alive_,
         batch = std::move(batch)](absl::StatusOr<RedisReply> reply) {
          if (!*alive) return;
          bool ok = reply.ok() && reply->type == RedisReply::Type::kArray &&
                    reply->elements.size() == batch.size();
          for (size_t i = 0; i < batch.size(); ++i) {
            const auto& [key, counts] = batch[i];
            if (ok) {
              ApplyRecordReply(key, reply->elements[i], set_);
            } else {
              set_->RecordLocal(key, counts.successes, counts.failures);
            }
          }
        });
    batch.clear();
    keys.clear();
    args.clear();
  };
  for (auto& [key, counts] : pending) {
    if (args.empty()) args.push_back(options_.worker_name);
    BreakerConfig config = set_->Config(key);
    keys.push_back(BreakerStateKey(key));
    args.push_back(key);
    args.push_back(absl::StrCat(counts.successes));
    args.push_back(absl::StrCat(counts.failures));
    args.push_back(
        absl::StrCat(std::max<int64_t>(std::min(config.quorum, live), 1)));
    std::vector<std::string> config_args = BreakerConfigArgs(config);
    // window_s, min_calls, ratio, open_ms (not max_open_ms)
    for (size_t i = 0; i < 4; ++i) args.push_back(std::move(config_args[i]));
    batch.emplace_back(key, counts);
    if (batch.size() >= kRecordBatch) send();
  }
  send();
}

void RedisCircuitBreaker::ProbeDone(absl::string_view key, uint64_t token,
                                    bool success) {
  if ((token & kRedisProbe) == 0) {
    set_->ProbeDoneLocal(key, token, success);
    return;
  }
  std::string k(key);
  // The script acts only if this is still the probe's owner.
  std::vector<std::string> args = {ProbeToken(token), success ? "1" : "0", k};
  for (std::string& arg : BreakerConfigArgs(set_->Config(k)))
    args.push_back(std::move(arg));
  ++redis_calls_;
  // On an error the probe's key expires and another worker probes.
  redis_.EvalSha(BreakerProbeDoneScript(),
                 {BreakerStateKey(k), BreakerProbeKey(k)}, std::move(args),
                 [this, alive = alive_, k](absl::StatusOr<RedisReply> reply) {
                   if (!*alive || !reply.ok()) return;
                   ApplyProbeDoneReply(k, *reply, set_);
                 });
}

}  // namespace fetchfleet::worker
