#include "common/breaker_scripts.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace fetchfleet {
namespace {

// Redis' clock in ms, and the window's sums; old buckets are deleted as they
// are passed. Mirrors Breaker::Counts.
constexpr absl::string_view kPrelude = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function window(h, window_s, sec)
  local oldest = sec - window_s + 1
  local all = redis.call('HGETALL', h)
  local calls, fails, workers = 0, 0, 0
  for i = 1, #all, 2 do
    local f = all[i]
    local kind = string.sub(f, 1, 2)
    if kind == 'o:' or kind == 'f:' or kind == 'w:' then
      local s
      if kind == 'w:' then
        s = tonumber(all[i + 1])
      else
        s = tonumber(string.sub(f, 3))
      end
      if s < oldest then
        redis.call('HDEL', h, f)
      elseif kind == 'w:' then
        workers = workers + 1
      else
        local n = tonumber(all[i + 1])
        calls = calls + n
        if kind == 'f:' then fails = fails + n end
      end
    end
  end
  return calls, fails, workers
end
-- Every change is stamped with its time, `v`: replies and events carry the
-- stamp of the state they report, so a worker never lets an older report
-- (a reply overtaken by an event) undo a newer one.
local function publish(name, state, ms)
  redis.call('PUBLISH', 'ff:br:events',
             name .. '\n' .. state .. '\n' .. ms .. '\n' .. now)
end
-- The state as replies report it: the state, what is left of an open
-- period, and the change's stamp.
local function current(h)
  local st = redis.call('HMGET', h, 'state', 'until', 'v')
  local state = st[1] or 'closed'
  local remaining = 0
  if state == 'open' then
    remaining = math.max((tonumber(st[2]) or 0) - now, 0)
  end
  return state, remaining, tonumber(st[3]) or 0
end
)lua";

const RedisScript* Script(absl::string_view body) {
  return new RedisScript(absl::StrCat(kPrelude, body));
}

}  // namespace

std::string BreakerStateKey(absl::string_view key) {
  return absl::StrCat("ff:br:{", key, "}");
}

std::string BreakerProbeKey(absl::string_view key) {
  return absl::StrCat("ff:br:{", key, "}:probe");
}

std::string BreakerKeyFromStateKey(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, "ff:br:{") ||
      !absl::ConsumeSuffix(&name, "}"))
    return "";
  return std::string(name);
}

std::vector<std::string> BreakerConfigArgs(const BreakerConfig& config) {
  return {
      absl::StrCat(std::max<int64_t>(absl::ToInt64Seconds(config.window), 1)),
      absl::StrCat(config.min_calls),
      absl::StrFormat("%.6f", config.failure_ratio),
      absl::StrCat(absl::ToInt64Milliseconds(config.open)),
      absl::StrCat(absl::ToInt64Milliseconds(config.max_open))};
}

BreakerState ParseBreakerState(absl::string_view name) {
  if (name == "open") return BreakerState::kOpen;
  if (name == "half_open") return BreakerState::kHalfOpen;
  return BreakerState::kClosed;
}

const RedisScript& BreakerRecordScript() {
  static const RedisScript* script = Script(R"lua(
local worker = ARGV[1]
local sec = math.floor(now / 1000)
local out = {}
for i, h in ipairs(KEYS) do
  local a = 1 + (i - 1) * 8
  local name, ok, fail = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local quorum, window_s = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  local min_calls, ratio = tonumber(ARGV[a + 6]), tonumber(ARGV[a + 7])
  local open_ms = tonumber(ARGV[a + 8])
  if ok > 0 then redis.call('HINCRBY', h, 'o:' .. sec, ok) end
  if fail > 0 then
    redis.call('HINCRBY', h, 'f:' .. sec, fail)
    redis.call('HSET', h, 'w:' .. worker, sec)
  end
  local calls, fails, workers = window(h, window_s, sec)
  local st = redis.call('HMGET', h, 'state', 'until', 'period', 'v')
  local state = st[1] or 'closed'
  local until_ms = tonumber(st[2]) or 0
  local period = tonumber(st[3]) or 0
  local v = tonumber(st[4]) or 0
  local tripped = 0
  if state == 'closed' and calls >= min_calls and fails >= ratio * calls
      and workers >= quorum then
    state, until_ms, period, tripped, v = 'open', now + open_ms, open_ms, 1, now
    redis.call('HSET', h, 'state', 'open', 'until', until_ms, 'opened_at', now,
               'period', open_ms, 'v', now)
    redis.call('HINCRBY', h, 'trips', 1)
    publish(name, 'open', open_ms)
  end
  -- A closed breaker's hash lives a minute past its window: a crawl over a
  -- million hosts leaves no million hashes behind. An open one a day.
  if state == 'closed' then
    redis.call('PEXPIRE', h, window_s * 1000 + 60000)
  else
    redis.call('PEXPIRE', h, 86400000)
  end
  local remaining = 0
  if state == 'open' then remaining = math.max(until_ms - now, 0) end
  out[i] = {state, remaining, tripped, calls, fails, workers, period, v}
end
return out
)lua");
  return *script;
}

const RedisScript& BreakerAdmitScript() {
  static const RedisScript* script = Script(R"lua(
local h, p = KEYS[1], KEYS[2]
local token, ttl, name = ARGV[1], ARGV[2], ARGV[3]
local state, remaining, v = current(h)
if state == 'closed' then return {'closed', 0, 0, v} end
if state == 'open' and remaining > 0 then return {'open', remaining, 0, v} end
-- The open period is over: exactly one probe fleet-wide.
if redis.call('SET', p, token, 'NX', 'PX', ttl) then
  local changed = 0
  if state ~= 'half_open' then
    redis.call('HSET', h, 'state', 'half_open', 'v', now)
    publish(name, 'half_open', 0)
    changed, v = 1, now
  end
  return {'probe', 0, changed, v}
end
return {'half_open', math.max(redis.call('PTTL', p), 0), 0, v}
)lua");
  return *script;
}

const RedisScript& BreakerProbeDoneScript() {
  static const RedisScript* script = Script(R"lua(
local h, p = KEYS[1], KEYS[2]
local token, success, name = ARGV[1], ARGV[2], ARGV[3]
local open_ms, max_open = tonumber(ARGV[7]), tonumber(ARGV[8])
if redis.call('GET', p) ~= token then
  -- Not the probe any more (it expired, or an operator reset the breaker).
  local state, remaining, v = current(h)
  return {state, remaining, 0, v}
end
redis.call('DEL', p)
if success == '1' then
  -- Closed, with a fresh window; the trip count stays.
  local trips = redis.call('HGET', h, 'trips') or 0
  redis.call('DEL', h)
  redis.call('HSET', h, 'trips', trips, 'v', now)
  redis.call('PEXPIRE', h, 86400000)
  publish(name, 'closed', 0)
  return {'closed', 0, 1, now}
end
local period = tonumber(redis.call('HGET', h, 'period')) or open_ms
period = math.min(period * 2, max_open)
redis.call('HSET', h, 'state', 'open', 'until', now + period, 'opened_at', now,
           'period', period, 'v', now)
redis.call('PEXPIRE', h, 86400000)
publish(name, 'open', period)
return {'open', period, 1, now}
)lua");
  return *script;
}

const RedisScript& BreakerResetScript() {
  static const RedisScript* script = Script(R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'v', now)
redis.call('PEXPIRE', KEYS[1], 86400000)
publish(ARGV[1], 'closed', 0)
return 1
)lua");
  return *script;
}

const RedisScript& BreakerStatusScript() {
  static const RedisScript* script = Script(R"lua(
local h = KEYS[1]
local calls, fails, workers = window(h, tonumber(ARGV[1]), math.floor(now / 1000))
local state, remaining = current(h)
local st = redis.call('HMGET', h, 'opened_at', 'period', 'trips')
return {state, remaining, tonumber(st[1]) or 0, tonumber(st[2]) or 0,
        tonumber(st[3]) or 0, calls, fails, workers, now}
)lua");
  return *script;
}

}  // namespace fetchfleet
