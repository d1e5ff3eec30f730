#include "common/redact.h"

#include "gtest/gtest.h"

namespace fetchfleet {
namespace {

TEST(RedactUrl, ReplacesUserinfo) {
  EXPECT_EQ(RedactUrl("http://user:pass@example.com/x?y=1"),
            "http://***@example.com/x?y=1");
  EXPECT_EQ(RedactUrl("https://token@example.com"), "https://***@example.com");
  EXPECT_EQ(RedactUrl("HTTPS://u:p@[::1]:8443/"), "HTTPS://***@[::1]:8443/");
  EXPECT_EQ(RedactUrl("redis://alice:secret@10.0.0.1:6379/2"),
            "redis://***@10.0.0.1:6379/2");
  EXPECT_EQ(RedactUrl("redis://:secret@host"), "redis://***@host");
}

TEST(RedactUrl, AnAtInThePasswordGoesToo) {
  EXPECT_EQ(RedactUrl("http://u:p@ss@host/"), "http://***@host/");
  EXPECT_EQ(RedactUrl("http://u:p%40ss@host/"), "http://***@host/");
}

TEST(RedactUrl, LeavesUrlsWithoutUserinfoAlone) {
  for (const char* url :
       {"http://example.com/", "https://medium.com/@alice",
        "http://host:8080/path?email=a@b.c#x@y", "http://[::1]:80/@",
        "example.com/x", "", "not a URL at all", "http://", "x: y"}) {
    EXPECT_EQ(RedactUrl(url), url);
  }
}

TEST(RedactUrl, APasswordWithARawSlashIsStillHidden) {
  // Malformed (the '/' should be %2F) but exactly what an error message
  // about a malformed URL would quote.
  EXPECT_EQ(RedactUrl("http://bob:se/cr?et@host/x"), "http://***@host/x");
  EXPECT_EQ(RedactUrl("http://bob:se#cret@host"), "http://***@host");
}

TEST(RedactUrl, TextWithoutASchemeToo) {
  EXPECT_EQ(RedactUrl("user:pw@example.com/x"), "***@example.com/x");
}

TEST(SecretHeaders, AreKnownInAnyCase) {
  for (const char* name :
       {"Authorization", "authorization", "PROXY-AUTHORIZATION", "Cookie",
        "set-cookie", "X-Api-Key", "x-API-key"}) {
    EXPECT_TRUE(IsSecretHeader(name)) << name;
    EXPECT_EQ(RedactHeaderValue(name, "Bearer abc"), "***") << name;
  }
  for (const char* name : {"Accept", "X-Api-Keys", "Authorization2", "Cookies",
                           "", "User-Agent"}) {
    EXPECT_FALSE(IsSecretHeader(name)) << name;
    EXPECT_EQ(RedactHeaderValue(name, "v"), "v") << name;
  }
}

}  // namespace
}  // namespace fetchfleet
