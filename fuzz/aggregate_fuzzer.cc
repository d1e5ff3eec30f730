// Fuzzes the Aggregate call's pure part (coordinator/aggregate.h): the
// document parser, and the merge of a synthetic set of part results with
// their fallbacks and parsed bodies.
//
// Input: the document, then per part an optional '\0'-separated outcome
// whose first byte says what came back ('o' ok, 't' ok but truncated, 'e'
// an error, 'n' nothing by the deadline; anything else: ok) and whose rest is
// the body. Parts without one answer "{}".
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "coordinator/aggregate.h"
#include "fuzz/fuzz_util.h"
#include "nlohmann/json.hpp"

namespace fetchfleet::coordinator {
namespace {

PartOutcome Outcome(const AggregatePart& part, absl::string_view spec,
                    size_t i) {
  PartOutcome outcome;
  outcome.at = absl::Milliseconds(static_cast<int64_t>(i) * 3);
  char kind = spec.empty() ? 'o' : spec[0];
  if (kind == 'n') return outcome;
  v1::FetchResult result;
  result.set_index(part.request.index());
  result.set_id(part.request.id());
  result.set_worker("w-1");
  if (kind == 'e') {
    result.set_status(503);
    result.set_error(v1::ERROR_HTTP_STATUS);
    result.set_error_message("HTTP 503");
  } else {
    result.set_ok(true);
    result.set_status(200);
    result.set_truncated(kind == 't');
    result.set_body(spec.empty() ? std::string("{}")
                                 : std::string(spec.substr(1)));
  }
  outcome.result = std::move(result);
  return outcome;
}

void Run(absl::string_view input) {
  std::vector<absl::string_view> chunks =
      absl::StrSplit(input, absl::MaxSplits('\0', kMaxAggregateParts));
  absl::StatusOr<AggregatePlan> plan = ParseAggregate(chunks[0]);
  if (!plan.ok()) {
    FUZZ_CHECK(!plan.status().message().empty());
    return;
  }
  FUZZ_CHECK(!plan->parts.empty());
  FUZZ_CHECK(plan->parts.size() <= kMaxAggregateParts);
  FUZZ_CHECK(plan->deadline >= absl::Milliseconds(1));
  std::set<std::string> names;
  for (size_t i = 0; i < plan->parts.size(); ++i) {
    const AggregatePart& part = plan->parts[i];
    FUZZ_CHECK(names.insert(part.name).second);
    FUZZ_CHECK(part.request.index() == i);
    FUZZ_CHECK(part.request.id() == part.name);
    FUZZ_CHECK(part.request.max_attempts() >= 1);
    FUZZ_CHECK(part.request.timeout_ms() >= 1);
    FUZZ_CHECK(absl::Milliseconds(part.request.timeout_ms()) <= plan->deadline);
    FUZZ_CHECK(nlohmann::json::accept(part.fallback));
    FUZZ_CHECK(fuzz::RoundTrips(part.request));
  }

  std::vector<PartOutcome> outcomes;
  bool required_failed = false;
  for (size_t i = 0; i < plan->parts.size(); ++i) {
    absl::string_view spec = i + 1 < chunks.size() ? chunks[i + 1] : "";
    outcomes.push_back(Outcome(plan->parts[i], spec, i));
  }
  v1::AggregateResponse response =
      MergeAggregate(*plan, outcomes, absl::Milliseconds(42));
  FUZZ_CHECK(response.parts_size() == static_cast<int>(plan->parts.size()));
  nlohmann::json doc = nlohmann::json::parse(response.document(), nullptr,
                                             /*allow_exceptions=*/false);
  FUZZ_CHECK(!doc.is_discarded());
  FUZZ_CHECK(doc.is_object());
  FUZZ_CHECK(doc["degraded"].is_array());
  FUZZ_CHECK(doc["errors"].is_object());
  for (int i = 0; i < response.parts_size(); ++i) {
    const v1::AggregatePartResult& part = response.parts(i);
    FUZZ_CHECK(part.name() == plan->parts[i].name);
    if (!part.ok() && part.required()) required_failed = true;
    if (!part.ok()) FUZZ_CHECK(!part.error().empty());
    FUZZ_CHECK(part.degraded() == (!part.ok() && !part.required()));
  }
  FUZZ_CHECK(response.ok() == !required_failed);
  FUZZ_CHECK(response.ok() == !doc.contains("error"));
  FUZZ_CHECK(fuzz::RoundTrips(response));
}

}  // namespace
}  // namespace fetchfleet::coordinator

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = fetchfleet::fuzz::QuietLogs();
  (void)quiet;
  fetchfleet::coordinator::Run(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
