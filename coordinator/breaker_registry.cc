#include "coordinator/breaker_registry.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/breaker_scripts.h"
#include "common/logging.h"

namespace fetchfleet::coordinator {
namespace {

constexpr char kBreakersKey[] = "ff:breakers";
// A listing shows at most this many breakers.
constexpr size_t kMaxListed = 10000;

// "window_s min_calls ratio open_ms max_open_ms quorum slow_call_ms"
std::string Encode(const BreakerConfig& c) {
  return absl::StrFormat("%d %d %.6f %d %d %d %d",
                         absl::ToInt64Seconds(c.window), c.min_calls,
                         c.failure_ratio, absl::ToInt64Milliseconds(c.open),
                         absl::ToInt64Milliseconds(c.max_open), c.quorum,
                         absl::ToInt64Milliseconds(c.slow_call));
}

std::optional<BreakerConfig> Decode(absl::string_view value) {
  std::vector<absl::string_view> parts = absl::StrSplit(value, ' ');
  int64_t window_s, open_ms, max_open_ms, slow_ms;
  BreakerConfig c;
  if (parts.size() != 7 || !absl::SimpleAtoi(parts[0], &window_s) ||
      !absl::SimpleAtoi(parts[1], &c.min_calls) ||
      !absl::SimpleAtod(parts[2], &c.failure_ratio) ||
      !absl::SimpleAtoi(parts[3], &open_ms) ||
      !absl::SimpleAtoi(parts[4], &max_open_ms) ||
      !absl::SimpleAtoi(parts[5], &c.quorum) ||
      !absl::SimpleAtoi(parts[6], &slow_ms))
    return std::nullopt;
  c.window = absl::Seconds(window_s);
  c.open = absl::Milliseconds(open_ms);
  c.max_open = absl::Milliseconds(max_open_ms);
  c.slow_call = absl::Milliseconds(slow_ms);
  if (!c.Validate().ok()) return std::nullopt;
  return c;
}

v1::BreakerTable Table(const std::map<std::string, BreakerConfig>& configs,
                       bool in_redis) {
  v1::BreakerTable table;
  table.set_in_redis(in_redis);
  for (const auto& [key, config] : configs) {
    v1::BreakerSetting* setting = table.add_settings();
    setting->set_key(key);
    *setting->mutable_config() = config.ToProto();
  }
  return table;
}

}  // namespace

BreakerRegistry::BreakerRegistry(EventLoop* loop, Scheduler* scheduler,
                                 std::optional<RedisUrl> redis,
                                 absl::Duration refresh)
    : scheduler_(scheduler) {
  if (redis) {
    store_ = std::make_unique<RedisHashWatcher>(
        loop, *redis, kBreakersKey, refresh,
        [this](absl::StatusOr<RedisReply> reply) {
          OnLoaded(std::move(reply));
        });
  }
}

void BreakerRegistry::Start() {
  scheduler_->SetBreakers(Table(configs_, in_redis()));
  if (store_ != nullptr) store_->Start();
}

void BreakerRegistry::OnLoaded(absl::StatusOr<RedisReply> reply) {
  if (!reply.ok()) {
    FF_LOG(WARNING) << "reading breaker settings from redis: "
                    << reply.status().message();
    return;
  }
  std::map<std::string, BreakerConfig> loaded;
  const std::vector<RedisReply>& fields = reply->elements;
  for (size_t i = 0; i + 1 < fields.size(); i += 2) {
    std::optional<BreakerConfig> config = Decode(fields[i + 1].str);
    if (!config) {
      FF_LOG(WARNING) << LogField(kLogKey, fields[i].str)
                      << "ignoring the malformed breaker settings for "
                      << fields[i].str << " in redis";
      continue;
    }
    loaded[fields[i].str] = *config;
  }
  Install(std::move(loaded));
}

void BreakerRegistry::Install(std::map<std::string, BreakerConfig> configs) {
  if (configs == configs_) return;
  configs_ = std::move(configs);
  scheduler_->SetBreakers(Table(configs_, in_redis()));
}

void BreakerRegistry::Set(const std::string& key, BreakerConfig config,
                          Done done) {
  auto install = [this, key, config] {
    std::map<std::string, BreakerConfig> configs = configs_;
    configs[key] = config;
    Install(std::move(configs));
  };
  if (store_ == nullptr) {
    install();
    done(absl::OkStatus());
    return;
  }
  store_->client()->Command(
      {"HSET", kBreakersKey, key, Encode(config)},
      [install,
       done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        if (!reply.ok()) {
          done(absl::UnavailableError(absl::StrCat(
              "the settings were not stored: ", reply.status().message())));
          return;
        }
        install();
        done(absl::OkStatus());
      });
}

void BreakerRegistry::Reset(const std::string& key, Done done) {
  // A reset of a key the fleet knows nothing of is refused rather than done:
  // a typo must not read "breaker reset", nor leave a row behind.
  auto unknown = [key] {
    return absl::NotFoundError(
        absl::StrCat("no breaker state or settings for key ", key));
  };
  if (store_ == nullptr) {
    if (configs_.count(key) == 0 &&
        scheduler_->breaker_reports().reports().count(key) == 0) {
      done(unknown());
      return;
    }
    scheduler_->ResetBreaker(key);
    done(absl::OkStatus());
    return;
  }
  store_->client()->EvalSha(
      BreakerResetScript(), {BreakerStateKey(key), BreakerProbeKey(key)}, {key},
      [this, key, unknown,
       done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        if (!reply.ok()) {
          done(absl::UnavailableError(absl::StrCat(
              "the breaker was not reset: ", reply.status().message())));
          return;
        }
        // 0: Redis had no state for the key (and the script wrote none).
        if (reply->integer == 0 && configs_.count(key) == 0) {
          done(unknown());
          return;
        }
        scheduler_->ResetBreaker(key);
        done(absl::OkStatus());
      });
}

v1::BreakerInfo BreakerRegistry::BaseInfo(const std::string& key) const {
  v1::BreakerInfo info;
  info.set_key(key);
  auto it = configs_.find(key);
  info.set_configured(it != configs_.end());
  *info.mutable_config() =
      (it == configs_.end() ? BreakerConfig{} : it->second).ToProto();
  return info;
}

v1::BreakerInfo BreakerRegistry::LocalInfo(const std::string& key) const {
  v1::BreakerInfo info = BaseInfo(key);
  const auto& reports = scheduler_->breaker_reports().reports();
  auto it = reports.find(key);
  if (it == reports.end()) return info;
  const BreakerReports::Report& report = it->second;
  info.set_state(report.event.state());
  info.set_calls(report.event.calls());
  info.set_failures(report.event.failures());
  info.set_failing_workers(report.event.failing_workers());
  info.set_trips(report.opened);
  if (report.event.state() == v1::BREAKER_OPEN) {
    info.set_opened_at_unix_ms(report.at_unix_ms);
    info.set_open_ms(report.event.open_ms());
    absl::Duration left =
        report.at +
        absl::Milliseconds(static_cast<int64_t>(report.event.open_ms())) -
        Clock::Real()->Now();
    info.set_next_probe_ms(static_cast<uint64_t>(
        std::max<int64_t>(absl::ToInt64Milliseconds(left), 0)));
  }
  return info;
}

void BreakerRegistry::List(Listed done) {
  if (store_ == nullptr) {
    v1::ListBreakersResponse response;
    response.set_changes_reported(scheduler_->breaker_reports().changes());
    std::vector<std::string> keys;
    for (const auto& [key, config] : configs_) keys.push_back(key);
    for (const auto& [key, report] : scheduler_->breaker_reports().reports())
      keys.push_back(key);
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    for (const std::string& key : keys)
      *response.add_breakers() = LocalInfo(key);
    done(std::move(response));
    return;
  }
  Scan("0", {},
       [this, done = std::move(done)](
           absl::StatusOr<std::vector<std::string>> keys) mutable {
         if (!keys.ok()) {
           done(keys.status());
           return;
         }
         for (const auto& [key, config] : configs_) keys->push_back(key);
         std::sort(keys->begin(), keys->end());
         keys->erase(std::unique(keys->begin(), keys->end()), keys->end());
         if (keys->size() > kMaxListed) keys->resize(kMaxListed);
         ReadStates(std::move(*keys), std::move(done));
       });
}

void BreakerRegistry::Scan(
    std::string cursor, std::vector<std::string> found,
    absl::AnyInvocable<void(absl::StatusOr<std::vector<std::string>>)> done) {
  store_->client()->Command(
      {"SCAN", cursor, "MATCH", "ff:br:{*}", "COUNT", "1000"},
      [this, found = std::move(found),
       done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        if (!reply.ok()) {
          done(absl::UnavailableError(absl::StrCat(
              "reading breakers from redis: ", reply.status().message())));
          return;
        }
        if (reply->elements.size() != 2) {
          done(absl::InternalError("unexpected SCAN reply"));
          return;
        }
        for (const RedisReply& name : reply->elements[1].elements) {
          std::string key = BreakerKeyFromStateKey(name.str);
          if (!key.empty()) found.push_back(std::move(key));
        }
        const std::string& next = reply->elements[0].str;
        if (next == "0" || found.size() >= kMaxListed) {
          done(std::move(found));
          return;
        }
        Scan(next, std::move(found), std::move(done));
      });
}

void BreakerRegistry::ReadStates(std::vector<std::string> keys, Listed done) {
  struct Gather {
    v1::ListBreakersResponse response;
    size_t left = 0;
    Listed done;
  };
  auto gather = std::make_shared<Gather>();
  gather->response.set_in_redis(true);
  gather->response.set_changes_reported(
      scheduler_->breaker_reports().changes());
  gather->done = std::move(done);
  gather->left = keys.size();
  if (keys.empty()) {
    gather->done(std::move(gather->response));
    return;
  }
  for (const std::string& key : keys) {
    *gather->response.add_breakers() = BaseInfo(key);
  }
  for (int i = 0; i < gather->response.breakers_size(); ++i) {
    const std::string& key = keys[i];
    BreakerConfig config =
        BreakerConfig::FromProto(gather->response.breakers(i).config());
    store_->client()->EvalSha(
        BreakerStatusScript(), {BreakerStateKey(key)},
        {absl::StrCat(absl::ToInt64Seconds(config.window))},
        [gather, i](absl::StatusOr<RedisReply> reply) {
          v1::BreakerInfo* info = gather->response.mutable_breakers(i);
          if (reply.ok() && reply->elements.size() == 9) {
            const std::vector<RedisReply>& e = reply->elements;
            BreakerState state = ParseBreakerState(e[0].str);
            info->set_state(BreakerStateToProto(state));
            if (state != BreakerState::kClosed) {
              info->set_opened_at_unix_ms(e[2].integer);
              info->set_open_ms(static_cast<uint64_t>(e[3].integer));
              info->set_next_probe_ms(static_cast<uint64_t>(e[1].integer));
            }
            info->set_trips(static_cast<uint64_t>(e[4].integer));
            info->set_calls(static_cast<uint64_t>(e[5].integer));
            info->set_failures(static_cast<uint64_t>(e[6].integer));
            info->set_failing_workers(static_cast<uint32_t>(e[7].integer));
          }
          if (--gather->left == 0) gather->done(std::move(gather->response));
        });
  }
}

}  // namespace fetchfleet::coordinator
