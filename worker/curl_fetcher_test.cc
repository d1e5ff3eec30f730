#include "worker/curl_fetcher.h"

#include "gtest/gtest.h"
#include "tests/testing/http_test_server.h"

namespace fetchfleet::worker {
namespace {

class CurlFetcherTest : public ::testing::Test {
 protected:
  CurlFetcherTest() { allow_loopback_.Allow(*Cidr::Parse("127.0.0.0/8")); }

  // Fetch runs one attempt to completion on a fresh loop.
  AttemptResult Fetch(const std::string& url, const EgressPolicy& policy,
                      AttemptSettings settings = {},
                      const std::string& method = "GET",
                      uint32_t timeout_ms = 5000) {
    EventLoop loop;
    CurlFetcher fetcher(&loop, &policy, {});
    v1::FetchRequest request;
    request.set_url(url);
    request.set_method(method);
    request.set_timeout_ms(timeout_ms);
    AttemptResult out;
    loop.Post([&] {
      fetcher.Start(request, settings, [&](AttemptResult r) {
        out = std::move(r);
        loop.Stop();
      });
    });
    loop.Run();
    return out;
  }

  testing::HttpTestServer server_;
  EgressPolicy allow_loopback_;
};

TEST_F(CurlFetcherTest, FetchesABody) {
  AttemptResult r = Fetch(server_.Url("/json/ada"), allow_loopback_);
  EXPECT_EQ(r.outcome.error, v1::ERROR_NONE) << r.error_message;
  EXPECT_EQ(r.outcome.http_status, 200);
  EXPECT_EQ(r.body, "{\"name\": \"ada\"}");
  EXPECT_GT(r.latency_ms, 0);
}

TEST_F(CurlFetcherTest, HttpErrorsAreDataNotFailuresOfOurs) {
  AttemptResult r = Fetch(server_.Url("/status/503"), allow_loopback_);
  EXPECT_EQ(r.outcome.error, v1::ERROR_HTTP_STATUS);
  EXPECT_EQ(r.outcome.http_status, 503);
  EXPECT_EQ(r.body, "status 503");
}

TEST_F(CurlFetcherTest, LoopbackIsBlockedByDefaultOnTheConnectedAddress) {
  EgressPolicy strict;
  AttemptResult r = Fetch(server_.Url("/x"), strict);
  EXPECT_EQ(r.outcome.error, v1::ERROR_BLOCKED);
  EXPECT_NE(r.error_message.find("127.0.0.1"), std::string::npos)
      << r.error_message;
  // "localhost" resolves to loopback: the check is on the address, not the
  // name.
  r = Fetch(absl::StrCat("http://localhost:", server_.port(), "/x"), strict);
  EXPECT_EQ(r.outcome.error, v1::ERROR_BLOCKED);
  EXPECT_EQ(server_.Hits("/x"), 0);
}

TEST_F(CurlFetcherTest, RedirectToMetadataAddressIsBlocked) {
  AttemptResult r = Fetch(
      server_.Url("/redirect?to=http://169.254.169.254/latest/meta-data/"),
      allow_loopback_);
  EXPECT_EQ(r.outcome.error, v1::ERROR_BLOCKED) << r.error_message;
  EXPECT_NE(r.error_message.find("169.254.169.254"), std::string::npos)
      << r.error_message;
}

TEST_F(CurlFetcherTest, RedirectToFileSchemeIsRefused) {
  AttemptResult r =
      Fetch(server_.Url("/redirect?to=file:///etc/passwd"), allow_loopback_);
  EXPECT_EQ(r.outcome.error, v1::ERROR_BLOCKED) << r.error_message;
}

TEST_F(CurlFetcherTest, RedirectsAreFollowed) {
  AttemptResult r = Fetch(server_.Url("/redirect?to=/json/x"), allow_loopback_);
  EXPECT_EQ(r.outcome.http_status, 200);
  EXPECT_EQ(r.body, "{\"name\": \"x\"}");
}

TEST_F(CurlFetcherTest, BodyCapTruncates) {
  AttemptSettings settings;
  settings.body_cap_bytes = 1000;
  AttemptResult r =
      Fetch(server_.Url("/bytes/50000"), allow_loopback_, settings);
  EXPECT_EQ(r.outcome.error, v1::ERROR_NONE) << r.error_message;
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(r.body.size(), 1000u);
}

TEST_F(CurlFetcherTest, TimeoutIsReported) {
  AttemptResult r =
      Fetch(server_.Url("/delay/2000"), allow_loopback_, {}, "GET", 200);
  EXPECT_EQ(r.outcome.error, v1::ERROR_TIMEOUT);
}

TEST_F(CurlFetcherTest, ConnectionRefusedIsConnect) {
  AttemptResult r = Fetch("http://127.0.0.1:1/", allow_loopback_);
  EXPECT_EQ(r.outcome.error, v1::ERROR_CONNECT);
}

TEST_F(CurlFetcherTest, RetryAfterAndHeadersAreRead) {
  AttemptSettings settings;
  settings.include_headers = true;
  AttemptResult r =
      Fetch(server_.Url("/throttle/k1/5/7"), allow_loopback_, settings);
  EXPECT_EQ(r.outcome.http_status, 429);
  EXPECT_EQ(r.outcome.retry_after, absl::Seconds(7));
  bool found = false;
  for (const auto& h : r.headers)
    found |= h.name() == "retry-after" && h.value() == "7";
  EXPECT_TRUE(found);
}

TEST_F(CurlFetcherTest, ManyConcurrentTransfersOnOneThread) {
  EventLoop loop;
  CurlFetcher fetcher(&loop, &allow_loopback_, {});
  int done = 0;
  constexpr int kCount = 100;
  loop.Post([&] {
    for (int i = 0; i < kCount; ++i) {
      v1::FetchRequest request;
      request.set_url(server_.Url("/delay/200"));
      request.set_method("GET");
      request.set_timeout_ms(10000);
      fetcher.Start(request, {}, [&](AttemptResult r) {
        EXPECT_EQ(r.outcome.http_status, 200);
        if (++done == kCount) loop.Stop();
      });
    }
  });
  absl::Time start = absl::Now();
  loop.Run();
  // 100 requests of 200 ms each, concurrently: far less than 100 * 200 ms.
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_GE(server_.MaxConcurrent(), 50);
}

}  // namespace
}  // namespace fetchfleet::worker
