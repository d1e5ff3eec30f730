#include "worker/redis_gcra.h"

#include "absl/strings/str_cat.h"

namespace fetchfleet::worker {

const RedisScript& ReserveScript() {
  static const RedisScript* script = new RedisScript(R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local burst = math.max(tonumber(ARGV[2]), 1)
local want = tonumber(ARGV[3])
local lookahead = tonumber(ARGV[4])
-- T rounded up to 0.5 us: sums of such steps stay exact in a double.
local interval = math.ceil(2000000 / rate) / 2
local tolerance = (burst - 1) * interval
local state = redis.call('HMGET', KEYS[1], 'tat', 'pause')
local tat = tonumber(state[1]) or now
local pause = tonumber(state[2]) or 0
local floor = math.max(now, pause)
local out = {0}
for i = 1, want do
  local start = math.max(floor, tat - tolerance)
  if start - now > lookahead then
    out[1] = math.ceil(start - now - lookahead)
    break
  end
  tat = math.max(tat, start) + interval
  out[#out + 1] = math.ceil(start - now)
end
if #out > 1 then
  redis.call('HSET', KEYS[1], 'tat', string.format('%.1f', tat))
  local last = math.max(tat, pause)
  redis.call('PEXPIRE', KEYS[1], math.ceil((last - now) / 1000) + 1000)
end
return out
)lua");
  return *script;
}

const RedisScript& PauseScript() {
  static const RedisScript* script = new RedisScript(R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call('HMGET', KEYS[1], 'tat', 'pause')
local tat = tonumber(state[1]) or 0
local pause = tonumber(state[2]) or 0
local wanted = now + tonumber(ARGV[1]) * 1000
if wanted > pause then
  pause = wanted
  redis.call('HSET', KEYS[1], 'pause', string.format('%.0f', pause))
  redis.call('PEXPIRE', KEYS[1],
             math.ceil((math.max(tat, pause) - now) / 1000) + 1000)
end
return math.ceil((pause - now) / 1000)
)lua");
  return *script;
}

std::string RateStateKey(absl::string_view rate_key) {
  return absl::StrCat("ff:rl:{", rate_key, "}");
}

}  // namespace fetchfleet::worker
