#include "coordinator/limit_registry.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"

namespace fetchfleet::coordinator {
namespace {

constexpr char kLimitsKey[] = "ff:limits";
// A field no rate key can have (keys are never empty): its presence says the
// hash is ours and intact.
constexpr char kSentinelField[] = "";

// The rate with every digit (StrCat keeps six: 1/3 came back as 0.333333,
// another limit than the one set, which each re-read then installed again).
std::string Encode(const RateLimit& limit) {
  return absl::StrFormat("%.17g %d", limit.per_second, limit.burst);
}

std::optional<RateLimit> Decode(absl::string_view value) {
  std::vector<absl::string_view> parts = absl::StrSplit(value, ' ');
  RateLimit limit;
  if (parts.size() != 2 || !absl::SimpleAtod(parts[0], &limit.per_second) ||
      !absl::SimpleAtoi(parts[1], &limit.burst) || !CheckRateLimit(limit).ok())
    return std::nullopt;
  return limit;
}

}  // namespace

LimitRegistry::LimitRegistry(EventLoop* loop, Scheduler* scheduler,
                             std::optional<RedisUrl> redis,
                             absl::Duration refresh)
    : scheduler_(scheduler) {
  if (redis) {
    store_ = std::make_unique<RedisHashWatcher>(
        loop, *redis, kLimitsKey, refresh,
        [this](absl::StatusOr<RedisReply> reply) {
          OnLoaded(std::move(reply));
        });
  }
}

void LimitRegistry::Start() {
  if (store_ != nullptr) store_->Start();
}

void LimitRegistry::OnLoaded(absl::StatusOr<RedisReply> reply) {
  if (!reply.ok()) {
    FF_LOG(WARNING) << "reading rate limits from redis: "
                    << reply.status().message();
    return;
  }
  bool intact = false;
  std::map<std::string, RateLimit> loaded;
  const std::vector<RedisReply>& fields = reply->elements;
  for (size_t i = 0; i + 1 < fields.size(); i += 2) {
    const std::string& key = fields[i].str;
    if (key == kSentinelField) {
      intact = true;
      continue;
    }
    std::optional<RateLimit> limit = Decode(fields[i + 1].str);
    if (!limit) {
      FF_LOG(WARNING) << LogField(kLogKey, key)
                      << "ignoring the malformed limit for " << key
                      << " in redis: \"" << fields[i + 1].str << "\"";
      continue;
    }
    loaded[key] = *limit;
  }
  if (!intact) {
    // A fresh Redis (or one that lost its data): write what we know.
    std::vector<std::string> command = {"HSET", kLimitsKey, kSentinelField,
                                        "fetchfleet"};
    for (const auto& [key, limit] : limits_) {
      command.push_back(key);
      command.push_back(Encode(limit));
    }
    if (!limits_.empty()) {
      FF_LOG(WARNING) << "redis has no rate limits; restoring the "
                      << limits_.size() << " this coordinator knows";
    }
    store_->client()->Command(
        std::move(command), [](absl::StatusOr<RedisReply> r) {
          if (!r.ok())
            FF_LOG(WARNING)
                << "restoring rate limits: " << r.status().message();
        });
    return;
  }
  Install(std::move(loaded));
}

void LimitRegistry::Install(std::map<std::string, RateLimit> limits) {
  if (limits == limits_) return;
  limits_ = std::move(limits);
  scheduler_->SetLimits(limits_);
}

void LimitRegistry::Set(const std::string& key, RateLimit limit, Done done) {
  if (store_ == nullptr) {
    std::map<std::string, RateLimit> limits = limits_;
    limits[key] = limit;
    Install(std::move(limits));
    done(absl::OkStatus());
    return;
  }
  store_->client()->Command(
      {"HSET", kLimitsKey, kSentinelField, "fetchfleet", key, Encode(limit)},
      [this, key, limit,
       done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        if (!reply.ok()) {
          done(absl::UnavailableError(absl::StrCat("the limit was not stored: ",
                                                   reply.status().message())));
          return;
        }
        std::map<std::string, RateLimit> limits = limits_;
        limits[key] = limit;
        Install(std::move(limits));
        done(absl::OkStatus());
      });
}

void LimitRegistry::Delete(const std::string& key, Done done) {
  // `existed`: the store had it (Redis may hold a limit another coordinator
  // set since this one last read the hash).
  auto finish = [this, key](bool existed, Done done) {
    std::map<std::string, RateLimit> limits = limits_;
    existed = limits.erase(key) > 0 || existed;
    Install(std::move(limits));
    done(existed ? absl::OkStatus()
                 : absl::NotFoundError(absl::StrCat("no limit for key ", key)));
  };
  if (store_ == nullptr) {
    finish(false, std::move(done));
    return;
  }
  store_->client()->Command(
      {"HDEL", kLimitsKey, key}, [finish, done = std::move(done)](
                                     absl::StatusOr<RedisReply> reply) mutable {
        if (!reply.ok()) {
          done(absl::UnavailableError(absl::StrCat(
              "the limit was not deleted: ", reply.status().message())));
          return;
        }
        finish(reply->integer > 0, std::move(done));
      });
}

}  // namespace fetchfleet::coordinator
