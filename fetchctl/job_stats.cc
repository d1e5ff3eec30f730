#include "fetchctl/job_stats.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace fetchfleet::fetchctl {
namespace {

// Outcomes in the README's order, so that every listing reads the same way;
// names the coordinator may add later follow, sorted.
std::vector<std::pair<std::string, uint64_t>> OrderedOutcomes(
    const v1::JobStats& stats) {
  static const char* const kOrder[] = {"ok",           "http_status",
                                       "timeout",      "connect",
                                       "dns",          "tls",
                                       "circuit_open", "blocked",
                                       "too_large",    "invalid_request",
                                       "cancelled",    "protocol",
                                       "rate_limited", "unknown"};
  std::map<std::string, uint64_t> rest(stats.outcomes().begin(),
                                       stats.outcomes().end());
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const char* name : kOrder) {
    auto it = rest.find(name);
    if (it == rest.end()) continue;
    out.emplace_back(it->first, it->second);
    rest.erase(it);
  }
  for (auto& entry : rest) out.push_back(entry);
  return out;
}

std::vector<std::pair<std::string, uint64_t>> OrderedClasses(
    const v1::JobStats& stats) {
  static const char* const kOrder[] = {"1xx", "2xx",   "3xx", "4xx",
                                       "5xx", "other", "none"};
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const char* name : kOrder) {
    auto it = stats.status_classes().find(name);
    if (it != stats.status_classes().end()) out.emplace_back(name, it->second);
  }
  return out;
}

std::string JoinCounts(const std::vector<std::pair<std::string, uint64_t>>& v) {
  return absl::StrJoin(v, ", ", [](std::string* out, const auto& entry) {
    absl::StrAppend(out, entry.second, " ", entry.first);
  });
}

// Ms: a latency for people: "0.42 ms", "41.2 ms", "133 ms", "2.35 s".
std::string Ms(double ms) {
  if (ms >= 1000) return absl::StrFormat("%.2f s", ms / 1000);
  if (ms >= 100) return absl::StrFormat("%.0f ms", ms);
  if (ms >= 10) return absl::StrFormat("%.1f ms", ms);
  return absl::StrFormat("%.2f ms", ms);
}

std::string Bytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  if (bytes < (1 << 20)) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  if (bytes < (uint64_t{1} << 30))
    return absl::StrFormat("%.1f MiB", bytes / 1048576.0);
  return absl::StrFormat("%.2f GiB", bytes / 1073741824.0);
}

std::string Latency(const v1::JobStats& s) {
  return absl::StrCat("p50 ", Ms(s.latency_p50_ms()), ", p90 ",
                      Ms(s.latency_p90_ms()), ", p99 ", Ms(s.latency_p99_ms()),
                      ", max ", Ms(s.latency_max_ms()));
}

// Rounded to the microsecond the histogram keeps.
double Round3(double v) { return std::round(v * 1000) / 1000; }

}  // namespace

const char* JobStateName(v1::JobState state) {
  switch (state) {
    case v1::JOB_RUNNING:
      return "running";
    case v1::JOB_DONE:
      return "done";
    case v1::JOB_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

std::string StatsBlock(const v1::JobStatus& status) {
  const v1::JobStats& s = status.stats();
  std::string out;
  if (s.latency_count() > 0) {
    absl::StrAppend(&out, "latency:    ", Latency(s), " (", s.latency_count(),
                    " requests, last attempt)\n");
  } else {
    absl::StrAppend(&out, "latency:    - (no request made an attempt yet)\n");
  }
  std::string outcomes = JoinCounts(OrderedOutcomes(s));
  absl::StrAppend(&out, "outcomes:   ", outcomes.empty() ? "-" : outcomes,
                  "\n");
  std::string classes = JoinCounts(OrderedClasses(s));
  absl::StrAppend(&out, "statuses:   ", classes.empty() ? "-" : classes, "\n");
  absl::StrAppend(&out,
                  "rate wait:  ", absl::StrFormat("%.1f s", s.rate_wait_s()),
                  " (summed over requests)\n");
  absl::StrAppend(&out, "received:   ", Bytes(s.body_bytes()), " of bodies\n");
  return out;
}

std::string StatsSummary(const v1::JobStatus& status) {
  const v1::JobStats& s = status.stats();
  std::vector<std::string> parts;
  if (s.latency_count() > 0)
    parts.push_back(absl::StrCat("latency ", Latency(s)));
  // Failures by kind, with their status classes when an HTTP status failed.
  std::vector<std::pair<std::string, uint64_t>> failures;
  for (auto& entry : OrderedOutcomes(s)) {
    if (entry.first != "ok") failures.push_back(entry);
  }
  if (!failures.empty()) {
    std::vector<std::pair<std::string, uint64_t>> failed_classes;
    for (auto& entry : OrderedClasses(s)) {
      if (entry.first != "2xx" && entry.first != "none")
        failed_classes.push_back(entry);
    }
    std::string text = absl::StrCat("failed: ", JoinCounts(failures));
    if (!failed_classes.empty())
      absl::StrAppend(&text, " (", JoinCounts(failed_classes), ")");
    parts.push_back(text);
  }
  parts.push_back(absl::StrCat(Bytes(s.body_bytes()), " received"));
  return absl::StrJoin(parts, "; ");
}

std::string StatsJson(const v1::JobStatus& status) {
  const v1::JobStats& s = status.stats();
  nlohmann::ordered_json outcomes = nlohmann::ordered_json::object();
  for (auto& [name, count] : OrderedOutcomes(s)) outcomes[name] = count;
  nlohmann::ordered_json classes = nlohmann::ordered_json::object();
  for (auto& [name, count] : OrderedClasses(s)) classes[name] = count;
  nlohmann::ordered_json j = {
      {"job", status.job_id()},
      {"state", JobStateName(status.state())},
      {"total", status.total()},
      {"done", status.done()},
      {"ok", status.ok()},
      {"failed", status.failed()},
      {"retries", s.retries()},
      {"elapsed_s", Round3(status.elapsed_s())},
      {"rate_wait_s", Round3(s.rate_wait_s())},
      {"body_bytes", s.body_bytes()},
      {"latency_ms",
       {{"count", s.latency_count()},
        {"p50", Round3(s.latency_p50_ms())},
        {"p90", Round3(s.latency_p90_ms())},
        {"p99", Round3(s.latency_p99_ms())},
        {"max", Round3(s.latency_max_ms())}}},
      {"outcomes", outcomes},
      {"status_classes", classes},
  };
  // Strings from the coordinator are not trusted to be UTF-8: replaced.
  return j.dump(-1, ' ', false,
                nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace fetchfleet::fetchctl
