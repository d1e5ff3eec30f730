// RedisClient against a real redis-server that wants a password: an ACL user
// (Redis 6+) and the default user's requirepass. A wrong or missing password
// must be one clear error in the log (naming AUTH or the missing password,
// never the password) and a growing backoff, not a connection that comes up,
// fails and is retried every few milliseconds.
#include <future>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/loop_thread.h"
#include "common/redis_client.h"
#include "gtest/gtest.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/timing.h"

namespace fetchfleet {
namespace {

using testing::RedisServer;
using testing::UniqueKey;
using testing::WaitFor;

constexpr char kAdminPassword[] = "admin-Pw-1";
// '@' and ':' in it: the URL carries it percent-encoded.
constexpr char kAlicePassword[] = "s3cr@t:pw";
constexpr char kAliceInUrl[] = "alice:s3cr%40t%3Apw";

RedisServer::Options Protected() {
  RedisServer::Options options;
  options.requirepass = kAdminPassword;
  options.users.push_back({"alice", kAlicePassword});
  return options;
}

std::string UrlWith(const RedisServer& redis, const std::string& user_info,
                    const std::string& path = "") {
  return absl::StrCat("redis://", user_info, user_info.empty() ? "" : "@",
                      redis.host(), ":", redis.port(), path);
}

// A client on a loop thread, with a short backoff so a retry storm would show
// within a second; `ups` counts on_state_change(true).
class Client {
 public:
  explicit Client(const std::string& url) {
    RedisClient::Options options;
    options.url = *RedisUrl::Parse(url);
    options.min_backoff = absl::Milliseconds(10);
    options.max_backoff = absl::Milliseconds(200);
    thread_.Call([&] {
      client_ = std::make_unique<RedisClient>(thread_.loop(), options);
      client_->set_on_state_change([this](bool up) { ups_ += up ? 1 : 0; });
      client_->Start();
    });
  }
  ~Client() {
    thread_.Call([&] { client_.reset(); });
  }
  bool connected() {
    return thread_.Call([&] { return client_->connected(); });
  }
  int ups() {
    return thread_.Call([&] { return ups_; });
  }
  absl::StatusOr<RedisReply> Run(std::vector<std::string> args) {
    std::promise<absl::StatusOr<RedisReply>> done;
    auto result = done.get_future();
    thread_.loop()->Post([&] {
      client_->Command(args, [&](absl::StatusOr<RedisReply> reply) {
        done.set_value(std::move(reply));
      });
    });
    return result.get();
  }

 private:
  LoopThread thread_;
  std::unique_ptr<RedisClient> client_;
  int ups_ = 0;  // loop thread
};

int64_t ConnectionsReceived(const RedisServer& redis) {
  for (absl::string_view line :
       absl::StrSplit(redis.Cli({"INFO", "stats"}), '\n')) {
    int64_t n = 0;
    if (absl::ConsumePrefix(&line, "total_connections_received:") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &n))
      return n;
  }
  ADD_FAILURE() << "no total_connections_received in INFO stats";
  return -1;
}

int CountLines(const std::string& log, absl::string_view needle) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n'))
    n += absl::StrContains(line, needle) ? 1 : 0;
  return n;
}

TEST(RedisAuth, AclUserRoundTripsACommand) {
  RedisServer redis(Protected());
  Client client(UrlWith(redis, kAliceInUrl, "/3"));
  ASSERT_TRUE(WaitFor([&] { return client.connected(); }));
  auto whoami = client.Run({"ACL", "WHOAMI"});
  ASSERT_TRUE(whoami.ok()) << whoami.status();
  EXPECT_EQ(whoami->str, "alice");
  std::string key = UniqueKey("ff:test:auth");
  ASSERT_TRUE(client.Run({"SET", key, "v"}).ok());
  auto get = client.Run({"GET", key});
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ(get->str, "v");
  // The SELECT of the URL's /3 went after the AUTH.
  EXPECT_EQ(redis.Cli({"-n", "3", "GET", key}), "v\n");
  EXPECT_EQ(client.ups(), 1);
}

TEST(RedisAuth, DefaultUserPasswordRoundTripsACommand) {
  RedisServer redis(Protected());
  Client client(UrlWith(redis, absl::StrCat(":", kAdminPassword)));
  ASSERT_TRUE(WaitFor([&] { return client.connected(); }));
  auto whoami = client.Run({"ACL", "WHOAMI"});
  ASSERT_TRUE(whoami.ok()) << whoami.status();
  EXPECT_EQ(whoami->str, "default");
  auto ping = client.Run({"PING"});
  ASSERT_TRUE(ping.ok()) << ping.status();
  EXPECT_EQ(ping->str, "PONG");
}

// The wrong password: never up, one log line naming AUTH, the backoff grows
// (a handful of connections, not hundreds), and once the password is right
// the client comes up by itself.
TEST(RedisAuth, AWrongPasswordIsOneClearErrorAndABackoff) {
  constexpr char kWrong[] = "Wr0ng-pw-77";
  RedisServer redis(Protected());
  int64_t connections_before = ConnectionsReceived(redis);
  ::testing::internal::CaptureStderr();
  std::string log;
  {
    Client client(UrlWith(redis, absl::StrCat("alice:", kWrong)));
    absl::SleepFor(absl::Milliseconds(1500));
    EXPECT_FALSE(client.connected());
    EXPECT_EQ(client.ups(), 0);
    auto refused = client.Run({"PING"});
    EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
    std::string message(refused.status().message());
    EXPECT_TRUE(absl::StrContains(message, "AUTH failed")) << message;
    EXPECT_TRUE(absl::StrContains(message, "WRONGPASS")) << message;
    EXPECT_TRUE(absl::StrContains(message, "alice:***@")) << message;
    EXPECT_FALSE(absl::StrContains(message, kWrong)) << message;
    // 10 ms doubling to 200 ms over 1.5 s is about a dozen attempts; a
    // backoff reset by each TCP connect would be over a hundred.
    int64_t connections = ConnectionsReceived(redis) - connections_before;
    EXPECT_LT(connections, 30);
    EXPECT_GT(connections, 2);  // it does keep retrying

    // The password becomes right: the next attempt gets in.
    redis.Cli({"ACL", "SETUSER", "alice", absl::StrCat(">", kWrong)});
    EXPECT_TRUE(WaitFor([&] { return client.connected(); }));
    EXPECT_EQ(client.ups(), 1);
  }
  log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(CountLines(log, "AUTH failed"), 1) << log;
  EXPECT_EQ(CountLines(log, "WRONGPASS"), 1) << log;
  EXPECT_EQ(CountLines(log, " connected"), 1) << log;
  EXPECT_FALSE(absl::StrContains(log, kWrong)) << log;
  EXPECT_FALSE(absl::StrContains(log, kAlicePassword)) << log;
}

TEST(RedisAuth, NoPasswordAgainstAProtectedRedisSaysSo) {
  RedisServer redis(Protected());
  ::testing::internal::CaptureStderr();
  {
    Client client(UrlWith(redis, ""));
    absl::SleepFor(absl::Milliseconds(800));
    EXPECT_FALSE(client.connected());
    EXPECT_EQ(client.ups(), 0);
    auto refused = client.Run({"PING"});
    EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
    std::string message(refused.status().message());
    EXPECT_TRUE(absl::StrContains(message, "Redis wants a password"))
        << message;
    EXPECT_TRUE(absl::StrContains(message, "NOAUTH")) << message;
  }
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(CountLines(log, "Redis wants a password"), 1) << log;
  EXPECT_EQ(CountLines(log, " connected"), 0) << log;
}

}  // namespace
}  // namespace fetchfleet
