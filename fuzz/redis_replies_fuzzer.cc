// Fuzzes the decoding of Redis replies: the fuzz bytes after the first are a
// RESP stream that hiredis' own reader (redisReader, what the connection
// uses) turns into real redisReply trees; each reply is copied as
// RedisClient does (CopyRedisReply) and handed, in turn from the decoder the
// first byte picks, to:
//   0  the breaker admit script's reply (ApplyAdmitReply),
//   1  the record script's reply, one entry per key (ApplyRecordReply),
//   2  the probe_done script's reply (ApplyProbeDoneReply),
//   3  a pub/sub push (SubscribedMessage) and its breaker event
//      (BreakerEvents::Apply),
//   4  key names as SCAN returns them (BreakerKeyFromStateKey) and state
//      names (ParseBreakerState).
// All of them update one BreakerSet on a fake clock, which is then asked
// what requests would ask it. Checked: no crash, no ASan/UBSan report, and
// an admission that refuses names when to ask again.
#include <hiredis/hiredis.h>

#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "common/breaker_scripts.h"
#include "common/redis_client.h"
#include "fuzz/fuzz_util.h"
#include "tests/testing/fake_clock.h"
#include "worker/breaker_events.h"
#include "worker/breaker_set.h"
#include "worker/redis_breaker.h"

namespace fetchfleet::worker {
namespace {

constexpr int kDecoders = 5;

// hiredis 0.14 allocates an array's element pointers as soon as it reads the
// count ("*648000000" asks for 5 GB; hiredis 1.x caps it, maxelements).
// Redis is a trusted peer, so inputs with a count no script of ours could
// produce are left out rather than reported as an out-of-memory that says
// nothing about our code.
bool HasHugeCount(absl::string_view resp) {
  for (size_t at = resp.find('*'); at != absl::string_view::npos;
       at = resp.find('*', at + 1)) {
    size_t end = at + 1;
    while (end < resp.size() && absl::ascii_isdigit(resp[end])) ++end;
    if (end - at - 1 > 6) return true;  // a million elements or more
  }
  return false;
}

void Decode(int decoder, const redisReply& raw, BreakerSet* set,
            testing::FakeClock* clock) {
  RedisReply reply = CopyRedisReply(raw);
  switch (decoder) {
    case 0: {
      std::optional<Breaker::Admission> admission =
          ApplyAdmitReply("k", reply, clock->Now(), absl::Seconds(5),
                          absl::Milliseconds(100), 42, set);
      if (admission && admission->verdict == Breaker::Verdict::kRefuse)
        FUZZ_CHECK(admission->retry_at != absl::InfinitePast());
      break;
    }
    case 1:
      if (reply.type == RedisReply::Type::kArray) {
        for (size_t i = 0; i < reply.elements.size(); ++i)
          ApplyRecordReply(i % 2 ? "k" : "other", reply.elements[i], set);
      }
      break;
    case 2:
      ApplyProbeDoneReply("k", reply, set);
      break;
    case 3:
      if (std::optional<std::string> payload = SubscribedMessage(raw))
        BreakerEvents::Apply(*payload, set);
      break;
    case 4:
      for (const RedisReply& name : reply.elements) {
        std::string key = BreakerKeyFromStateKey(name.str);
        if (!key.empty()) FUZZ_CHECK(BreakerStateKey(key) == name.str);
        (void)ParseBreakerState(name.str);
      }
      break;
  }
}

void Ask(BreakerSet* set, testing::FakeClock* clock) {
  for (absl::string_view key : {"k", "other"}) {
    (void)set->GetView(key);
    (void)set->ViewClosed(key);
    (void)set->ViewHolding(key);
  }
  clock->Advance(absl::Milliseconds(250));
}

void Run(const uint8_t* data, size_t size) {
  if (size == 0 || HasHugeCount(absl::string_view(
                       reinterpret_cast<const char*>(data), size)))
    return;
  testing::FakeClock clock;
  BreakerSet set(&clock);
  int reported = 0;
  set.set_event_listener([&reported](v1::BreakerEvent) { ++reported; });
  redisReader* reader = redisReaderCreate();
  FUZZ_CHECK(reader != nullptr);
  int decoder = data[0] % kDecoders;
  if (redisReaderFeed(reader, reinterpret_cast<const char*>(data + 1),
                      size - 1) == REDIS_OK) {
    for (;;) {
      void* out = nullptr;
      if (redisReaderGetReply(reader, &out) != REDIS_OK || out == nullptr)
        break;
      auto* raw = static_cast<redisReply*>(out);
      // Error replies become a status in RedisClient, before any decoder.
      if (raw->type != REDIS_REPLY_ERROR) Decode(decoder, *raw, &set, &clock);
      freeReplyObject(raw);
      Ask(&set, &clock);
      decoder = (decoder + 1) % kDecoders;
    }
  }
  redisReaderFree(reader);
}

}  // namespace
}  // namespace fetchfleet::worker

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = fetchfleet::fuzz::QuietLogs();
  (void)quiet;
  fetchfleet::worker::Run(data, size);
  return 0;
}
