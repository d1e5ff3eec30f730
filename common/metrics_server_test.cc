#include "common/metrics_server.h"

#include <curl/curl.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace fetchfleet {
namespace {

using ::testing::HasSubstr;

struct Response {
  long code = 0;
  std::string body;
};

size_t Append(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

Response Get(int port, const std::string& path, bool post = false) {
  Response response;
  CURL* easy = curl_easy_init();
  std::string url = absl::StrCat("http://127.0.0.1:", port, path);
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 5000L);
  if (post) curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "x");
  EXPECT_EQ(curl_easy_perform(easy), CURLE_OK) << url;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.code);
  curl_easy_cleanup(easy);
  return response;
}

TEST(MetricsServerTest, ServesMetricsAndProbes) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& family = prometheus::BuildCounter()
                     .Name("fetchfleet_test_things_total")
                     .Help("Things counted by the test.")
                     .Register(*registry);
  family.Add({{"kind", "a"}}).Increment(3);
  std::atomic<bool> ready{false};
  auto server = MetricsServer::Start("127.0.0.1:0", {registry}, [&] {
    return ready.load() ? Readiness{true, ""}
                        : Readiness{false, "not connected to a coordinator"};
  });
  ASSERT_TRUE(server.ok()) << server.status();
  int port = (*server)->port();
  ASSERT_GT(port, 0);

  Response metrics = Get(port, "/metrics");
  EXPECT_EQ(metrics.code, 200);
  EXPECT_THAT(metrics.body, HasSubstr("# TYPE fetchfleet_test_things_total "
                                      "counter"));
  EXPECT_THAT(metrics.body,
              HasSubstr("fetchfleet_test_things_total{kind=\"a\"} 3"));

  EXPECT_EQ(Get(port, "/healthz").code, 200);
  Response not_ready = Get(port, "/readyz");
  EXPECT_EQ(not_ready.code, 503);
  EXPECT_THAT(not_ready.body, HasSubstr("not connected to a coordinator"));
  ready = true;
  EXPECT_EQ(Get(port, "/readyz").code, 200);

  EXPECT_EQ(Get(port, "/nothing").code, 404);
  EXPECT_EQ(Get(port, "/metrics", /*post=*/true).code, 405);
}

// SlowCollectable: a scrape that takes `delay` (a coordinator whose loop is
// busy answers its census late).
class SlowCollectable : public prometheus::Collectable {
 public:
  explicit SlowCollectable(absl::Duration delay) : delay_(delay) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    absl::SleepFor(delay_);
    return {};
  }

 private:
  absl::Duration delay_;
};

TEST(MetricsServerTest, ProbesAreAnsweredWhileScrapesAreSlow) {
  auto server = MetricsServer::Start(
      "127.0.0.1:0", {std::make_shared<SlowCollectable>(absl::Seconds(2))}, [] {
        return Readiness{true, ""};
      });
  ASSERT_TRUE(server.ok()) << server.status();
  int port = (*server)->port();
  // Two scrapes at once, both held for 2 s.
  std::vector<std::thread> scrapes;
  for (int i = 0; i < 2; ++i)
    scrapes.emplace_back(
        [port] { EXPECT_EQ(Get(port, "/metrics").code, 200); });
  absl::SleepFor(absl::Milliseconds(300));  // both are being answered
  absl::Time start = absl::Now();
  EXPECT_EQ(Get(port, "/healthz").code, 200);
  EXPECT_EQ(Get(port, "/readyz").code, 200);
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  for (std::thread& scrape : scrapes) scrape.join();
}

TEST(MetricsServerTest, BadAddressesAreNamed) {
  auto bad = MetricsServer::Start("localhost", {}, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("want HOST:PORT"));
  EXPECT_FALSE(MetricsServer::Start("127.0.0.1:99999", {}, nullptr).ok());
  EXPECT_FALSE(MetricsServer::Start("::1:9090", {}, nullptr).ok());
  auto name = MetricsServer::Start("metrics.example:9090", {}, nullptr);
  ASSERT_FALSE(name.ok());
  EXPECT_THAT(name.status().message(), HasSubstr("must be an IP address"));

  // localhost is the one name taken: it is bound as 127.0.0.1.
  auto local = MetricsServer::Start("localhost:0", {}, nullptr);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(Get((*local)->port(), "/healthz").code, 200);

  auto first = MetricsServer::Start("127.0.0.1:0", {}, nullptr);
  ASSERT_TRUE(first.ok());
  auto taken = MetricsServer::Start(
      absl::StrCat("127.0.0.1:", (*first)->port()), {}, nullptr);
  ASSERT_FALSE(taken.ok());
  EXPECT_THAT(taken.status().message(), HasSubstr("cannot listen"));
}

}  // namespace
}  // namespace fetchfleet
