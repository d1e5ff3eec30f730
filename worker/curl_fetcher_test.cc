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

  // FetchAll starts one attempt of each URL at once on one fetcher (one
  // multi handle), runs until `wanted` of them are done (all by default), and
  // returns the results in the order given (a default AttemptResult for those
  // not done).
  std::vector<AttemptResult> FetchAll(
      const std::vector<std::pair<std::string, uint32_t>>& urls_and_timeouts,
      CurlFetcher::Options options = {}, size_t wanted = 0) {
    if (wanted == 0) wanted = urls_and_timeouts.size();
    EventLoop loop;
    CurlFetcher fetcher(&loop, &allow_loopback_, options);
    std::vector<AttemptResult> out(urls_and_timeouts.size());
    size_t done = 0;
    loop.Post([&] {
      for (size_t i = 0; i < urls_and_timeouts.size(); ++i) {
        v1::FetchRequest request;
        request.set_url(urls_and_timeouts[i].first);
        request.set_method("GET");
        request.set_timeout_ms(urls_and_timeouts[i].second);
        fetcher.Start(request, {}, [&, i](AttemptResult r) {
          out[i] = std::move(r);
          if (++done == wanted) loop.Stop();
        });
      }
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
  CurlFetcher::Options options;
  options.max_host_connections = 100;
  CurlFetcher fetcher(&loop, &allow_loopback_, options);
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

// Two responses that never come once held every other request to the same
// host:port: with PIPEWAIT on plain HTTP/1.1 each new transfer waited for the
// first connection to show whether it multiplexes, and it never answered. The
// fast requests timed out unsent.
TEST_F(CurlFetcherTest, ASlowResponseDoesNotBlockOtherRequestsToTheSameHost) {
  std::vector<std::pair<std::string, uint32_t>> urls = {
      {server_.Url("/hang"), 20000}, {server_.Url("/hang"), 20000}};
  for (int i = 0; i < 5; ++i)
    urls.push_back({server_.Url(absl::StrCat("/json/f", i)), 3000});
  absl::Time start = absl::Now();
  std::vector<AttemptResult> results = FetchAll(urls, {}, /*wanted=*/5);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  for (size_t i = 2; i < results.size(); ++i) {
    EXPECT_EQ(results[i].outcome.error, v1::ERROR_NONE)
        << i << ": " << results[i].error_message;
    EXPECT_EQ(results[i].outcome.http_status, 200);
  }
}

// At most max_host_connections connections to one host:port; the rest wait
// their turn (HTTP/1.1: one request in flight per connection).
TEST_F(CurlFetcherTest, ConnectionsPerHostAreCapped) {
  std::vector<std::pair<std::string, uint32_t>> urls;
  for (int i = 0; i < 6; ++i)
    urls.push_back({server_.Url(absl::StrCat("/delay/100?i=", i)), 10000});
  CurlFetcher::Options options;
  options.max_host_connections = 2;
  std::vector<AttemptResult> results = FetchAll(urls, options);
  for (const AttemptResult& r : results)
    EXPECT_EQ(r.outcome.http_status, 200) << r.error_message;
  EXPECT_EQ(server_.MaxConcurrent(), 2);
}

// A request that timed out before it got a connection reports how long it
// waited, not curl's 0: an https request waits (PIPEWAIT) for the first
// connection's TLS handshake, to learn whether it speaks HTTP/2, and this
// server never answers the handshake.
TEST_F(CurlFetcherTest, LatencyOfARequestThatNeverStartedIsItsWait) {
  std::string https = absl::StrCat("https://127.0.0.1:", server_.port());
  std::vector<AttemptResult> results =
      FetchAll({{https + "/first", 5000}, {https + "/second", 300}}, {},
               /*wanted=*/1);
  const AttemptResult& second = results[1];
  EXPECT_EQ(second.outcome.error, v1::ERROR_TIMEOUT) << second.error_message;
  EXPECT_GE(second.latency_ms, 290) << second.error_message;
  EXPECT_LT(second.latency_ms, 3000);
}

TEST_F(CurlFetcherTest, LatencyOfAConnectionWaitUnderTheCapIsReported) {
  CurlFetcher::Options options;
  options.max_host_connections = 1;
  std::vector<AttemptResult> results = FetchAll(
      {{server_.Url("/hang"), 5000}, {server_.Url("/json/x"), 300}}, options,
      /*wanted=*/1);
  EXPECT_EQ(results[1].outcome.error, v1::ERROR_TIMEOUT);
  EXPECT_GE(results[1].latency_ms, 290);
}

// An answer that breaks HTTP is `protocol`: not `connect` (retried, a breaker
// failure) and not `blocked`.
TEST_F(CurlFetcherTest, AHeaderOverTheCapIsAProtocolError) {
  AttemptResult r = Fetch(server_.Url("/big-header/1048576"), allow_loopback_);
  EXPECT_EQ(r.outcome.error, v1::ERROR_PROTOCOL) << r.error_message;
  EXPECT_NE(r.error_message.find("response header over the 100 KiB cap"),
            std::string::npos)
      << r.error_message;
}

TEST_F(CurlFetcherTest, HeadersOverTheTotalCapAreAProtocolError) {
  AttemptResult r = Fetch(server_.Url("/many-headers/400"), allow_loopback_);
  EXPECT_EQ(r.outcome.error, v1::ERROR_PROTOCOL) << r.error_message;
  EXPECT_NE(r.error_message.find("300 KiB"), std::string::npos)
      << r.error_message;
}

TEST_F(CurlFetcherTest, Http09IsAProtocolErrorNotARefusedRedirect) {
  AttemptResult r = Fetch(server_.Url("/http09"), allow_loopback_);
  EXPECT_EQ(r.outcome.error, v1::ERROR_PROTOCOL) << r.error_message;
  EXPECT_NE(r.error_message.find("HTTP/0.9"), std::string::npos)
      << r.error_message;
}

TEST_F(CurlFetcherTest, ABrokenChunkedBodyIsAProtocolError) {
  AttemptResult r = Fetch(server_.Url("/bad-chunk"), allow_loopback_);
  EXPECT_EQ(r.outcome.error, v1::ERROR_PROTOCOL) << r.error_message;
  EXPECT_NE(r.error_message.find("chunk"), std::string::npos)
      << r.error_message;
}

TEST_F(CurlFetcherTest, AHeaderUnderTheCapIsFine) {
  AttemptSettings settings;
  settings.include_headers = true;
  AttemptResult r =
      Fetch(server_.Url("/big-header/50000"), allow_loopback_, settings);
  EXPECT_EQ(r.outcome.error, v1::ERROR_NONE) << r.error_message;
  bool found = false;
  for (const auto& h : r.headers)
    found |= h.name() == "x-big" && h.value().size() == 50000;
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace fetchfleet::worker
