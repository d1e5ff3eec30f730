#include "coordinator/redis_hash_watcher.h"

namespace fetchfleet::coordinator {
namespace {

RedisClient::Options ClientOptions(const RedisUrl& url) {
  RedisClient::Options options;
  options.url = url;
  return options;
}

}  // namespace

RedisHashWatcher::RedisHashWatcher(EventLoop* loop, const RedisUrl& url,
                                   std::string hash, absl::Duration refresh,
                                   OnRead on_read)
    : loop_(loop),
      hash_(std::move(hash)),
      refresh_(refresh),
      on_read_(std::move(on_read)),
      client_(loop, ClientOptions(url)) {
  client_.set_on_state_change([this](bool up) {
    if (up) Read();
  });
}

void RedisHashWatcher::Start() {
  client_.Start();
  ScheduleRead();
}

void RedisHashWatcher::ScheduleRead() {
  loop_->RunAfter(refresh_, [this] {
    Read();
    ScheduleRead();
  });
}

void RedisHashWatcher::Read() {
  if (!client_.connected()) return;
  client_.Command({"HGETALL", hash_}, [this](absl::StatusOr<RedisReply> reply) {
    on_read_(std::move(reply));
  });
}

}  // namespace fetchfleet::coordinator
