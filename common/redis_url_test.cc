// RedisUrl: the URL forms (ACL user, default user, percent-encoding) and that
// neither ToString nor a parse error shows the password.
#include "common/redis_client.h"
#include "gtest/gtest.h"

namespace fetchfleet {
namespace {

RedisUrl MustParse(const std::string& text) {
  absl::StatusOr<RedisUrl> url = RedisUrl::Parse(text);
  EXPECT_TRUE(url.ok()) << url.status();
  return url.ok() ? *url : RedisUrl{};
}

TEST(RedisUrl, AclUserPasswordHostPortDb) {
  RedisUrl url = MustParse("redis://alice:secret@redis.internal:6380/2");
  EXPECT_EQ(url.user, "alice");
  EXPECT_EQ(url.password, "secret");
  EXPECT_EQ(url.host, "redis.internal");
  EXPECT_EQ(url.port, 6380);
  EXPECT_EQ(url.db, 2);
}

TEST(RedisUrl, DefaultUserForms) {
  RedisUrl colon = MustParse("redis://:secret@host");
  EXPECT_EQ(colon.user, "");
  EXPECT_EQ(colon.password, "secret");
  EXPECT_EQ(colon.port, 6379);
  // As redis-cli reads it: userinfo without a colon is a password.
  RedisUrl bare = MustParse("redis://secret@host:1");
  EXPECT_EQ(bare.user, "");
  EXPECT_EQ(bare.password, "secret");
  RedisUrl none = MustParse("redis://host");
  EXPECT_EQ(none.user, "");
  EXPECT_EQ(none.password, "");
}

TEST(RedisUrl, UserAndPasswordArePercentDecoded) {
  RedisUrl url = MustParse("redis://al%69ce:p%40ss%3Aw%2Fd%25@host/1");
  EXPECT_EQ(url.user, "alice");
  EXPECT_EQ(url.password, "p@ss:w/d%");
  EXPECT_EQ(url.host, "host");
  EXPECT_EQ(url.db, 1);
}

TEST(RedisUrl, RawAtAndColonInThePasswordStillParse) {
  RedisUrl url = MustParse("redis://bob:p@ss:w@host:7000");
  EXPECT_EQ(url.user, "bob");
  EXPECT_EQ(url.password, "p@ss:w");
  EXPECT_EQ(url.host, "host");
  EXPECT_EQ(url.port, 7000);
}

TEST(RedisUrl, Ipv6Host) {
  RedisUrl url = MustParse("redis://u:pw@[::1]:6390");
  EXPECT_EQ(url.host, "::1");
  EXPECT_EQ(url.port, 6390);
  EXPECT_EQ(url.ToString(), "redis://u:***@[::1]:6390");
  EXPECT_EQ(MustParse("redis://[::1]").port, 6379);
  EXPECT_FALSE(RedisUrl::Parse("redis://[::1").ok());
  EXPECT_FALSE(RedisUrl::Parse("redis://[::1]x").ok());
}

TEST(RedisUrl, ToStringShowsTheUserNeverThePassword) {
  EXPECT_EQ(MustParse("redis://alice:hunter2@host:6380/2").ToString(),
            "redis://alice:***@host:6380/2");
  EXPECT_EQ(MustParse("redis://:hunter2@host").ToString(),
            "redis://:***@host:6379");
  EXPECT_EQ(MustParse("redis://host:1").ToString(), "redis://host:1");
  // A user name with reserved characters is shown percent-encoded.
  EXPECT_EQ(MustParse("redis://a%40b:hunter2@h").ToString(),
            "redis://a%40b:***@h:6379");
}

TEST(RedisUrl, ErrorsNeverQuoteThePassword) {
  for (const char* text :
       {"redis://alice:hunter2@host:notaport", "redis://alice:hunter2@host/x",
        "redis://alice:hunter2@", "redis://alice:hunter2%4@host",
        "redis://alice:hunter2%zz@host", "http://alice:hunter2@host"}) {
    absl::StatusOr<RedisUrl> url = RedisUrl::Parse(text);
    ASSERT_FALSE(url.ok()) << text;
    std::string message(url.status().message());
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
    EXPECT_NE(message.find("***@"), std::string::npos) << message;
  }
}

TEST(RedisUrl, ErrorsSayWhatIsWrong) {
  EXPECT_NE(RedisUrl::Parse("redis://u:p%4@h").status().message().find("%XX"),
            absl::string_view::npos);
  EXPECT_NE(RedisUrl::Parse("redis://h:0").status().message().find("port"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace fetchfleet
