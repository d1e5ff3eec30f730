// Fuzzes the request-line parser (common/request_parser.h): every line a job's
// input may carry. The first byte picks the job's defaults (low 5 bits: max
// attempts; high 3: the timeout, from a table); the rest is the line. Checks
// that a line becomes exactly one outcome, that an error names its kind, and
// that whatever comes out survives protobuf's wire (it is sent to workers and
// clients) and the result-line encoder.
#include <cstdint>
#include <string>

#include "common/request_parser.h"
#include "common/result_json.h"
#include "fuzz/fuzz_util.h"
#include "nlohmann/json.hpp"

namespace fetchfleet {
namespace {

void CheckLine(absl::string_view line, const v1::JobOptions& options) {
  ParsedLine parsed = ParseRequestLine(line, 7, 3, options);
  switch (parsed.kind) {
    case ParsedLine::Kind::kSkip:
      break;
    case ParsedLine::Kind::kRequest: {
      const v1::FetchRequest& r = parsed.request;
      FUZZ_CHECK(!r.url().empty());
      FUZZ_CHECK(!r.id().empty());
      FUZZ_CHECK(r.index() == 3);
      FUZZ_CHECK(r.max_attempts() >= 1);
      FUZZ_CHECK(r.timeout_ms() >= 1);
      FUZZ_CHECK(ValidateFetchUrl(r.url()).ok());
      FUZZ_CHECK(fuzz::RoundTrips(r));
      break;
    }
    case ParsedLine::Kind::kError: {
      const v1::FetchResult& e = parsed.error;
      FUZZ_CHECK(e.error() == v1::ERROR_INVALID_REQUEST ||
                 e.error() == v1::ERROR_TOO_LARGE);
      FUZZ_CHECK(!e.error_message().empty());
      FUZZ_CHECK(e.index() == 3);
      FUZZ_CHECK(fuzz::RoundTrips(e));
      std::string json;
      AppendResultJson(e, &json);
      FUZZ_CHECK(nlohmann::json::accept(json));
      break;
    }
  }
}

}  // namespace
}  // namespace fetchfleet

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = fetchfleet::fuzz::QuietLogs();
  (void)quiet;
  if (size == 0) return 0;
  static constexpr uint32_t kTimeouts[] = {0,     1,      1000,   10000,
                                           60000, 600000, 600001, UINT32_MAX};
  fetchfleet::v1::JobOptions options;
  options.set_max_attempts(data[0] & 0x1f);
  options.set_timeout_ms(kTimeouts[data[0] >> 5]);
  std::string line(reinterpret_cast<const char*>(data + 1), size - 1);
  fetchfleet::CheckLine(line, options);
  // The same text as the JSON fields of an Aggregate part, and as a URL.
  absl::StatusOr<fetchfleet::v1::FetchRequest> object =
      fetchfleet::ParseRequestObject(line);
  if (object.ok()) FUZZ_CHECK(fetchfleet::fuzz::RoundTrips(*object));
  absl::StatusOr<std::string> host = fetchfleet::ValidateFetchUrl(line);
  if (host.ok()) FUZZ_CHECK(!host->empty());
  return 0;
}
