#include "fetchctl/job_stats.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace fetchfleet::fetchctl {
namespace {

v1::JobStatus Known() {
  v1::JobStatus status;
  status.set_job_id("j-1");
  status.set_state(v1::JOB_DONE);
  status.set_total(4);
  status.set_done(4);
  status.set_ok(2);
  status.set_failed(2);
  v1::JobStats* s = status.mutable_stats();
  s->set_latency_count(3);
  s->set_latency_p50_ms(4.1234);
  s->set_latency_p90_ms(41.25);
  s->set_latency_p99_ms(133.4);
  s->set_latency_max_ms(2345);
  (*s->mutable_outcomes())["timeout"] = 1;
  (*s->mutable_outcomes())["ok"] = 2;
  (*s->mutable_outcomes())["invalid_request"] = 1;
  (*s->mutable_status_classes())["2xx"] = 2;
  (*s->mutable_status_classes())["none"] = 2;
  s->set_retries(2);
  s->set_body_bytes(3 << 20);
  return status;
}

TEST(JobStatsFormatTest, SummaryListsLatencyFailuresAndBytes) {
  EXPECT_EQ(StatsSummary(Known()),
            "latency p50 4.12 ms, p90 41.2 ms, p99 133 ms, max 2.35 s; "
            "failed: 1 timeout, 1 invalid_request; 3.0 MiB received");
}

TEST(JobStatsFormatTest, SummaryLeavesOutWhatDidNotHappen) {
  v1::JobStatus empty;
  EXPECT_EQ(StatsSummary(empty), "0 B received");
}

TEST(JobStatsFormatTest, BlockOrdersOutcomesAsTheReadme) {
  std::string block = StatsBlock(Known());
  EXPECT_NE(block.find("outcomes:   2 ok, 1 timeout, 1 invalid_request\n"),
            std::string::npos)
      << block;
  EXPECT_NE(block.find("statuses:   2 2xx, 2 none\n"), std::string::npos)
      << block;
  EXPECT_NE(block.find("(3 requests, last attempt)"), std::string::npos);
  EXPECT_NE(StatsBlock(v1::JobStatus()).find("latency:    - "),
            std::string::npos);
}

TEST(JobStatsFormatTest, JsonIsOneObjectWithEveryMember) {
  std::string text = StatsJson(Known());
  EXPECT_EQ(text.find('\n'), std::string::npos);
  // ordered_json keeps the members in the order written.
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(text);
  EXPECT_EQ(j["job"], "j-1");
  EXPECT_EQ(j["state"], "done");
  EXPECT_EQ(j["retries"], 2);
  EXPECT_EQ(j["body_bytes"], 3 << 20);
  EXPECT_DOUBLE_EQ(j["latency_ms"]["p50"].get<double>(), 4.123);
  EXPECT_DOUBLE_EQ(j["latency_ms"]["max"].get<double>(), 2345);
  EXPECT_EQ(j["outcomes"].dump(),
            R"({"ok":2,"timeout":1,"invalid_request":1})");
  EXPECT_EQ(j["status_classes"].dump(), R"({"2xx":2,"none":2})");
  // An empty job still has every member.
  nlohmann::json empty = nlohmann::json::parse(StatsJson(v1::JobStatus()));
  EXPECT_TRUE(empty["outcomes"].is_object());
  EXPECT_EQ(empty["latency_ms"]["count"], 0);
}

}  // namespace
}  // namespace fetchfleet::fetchctl
