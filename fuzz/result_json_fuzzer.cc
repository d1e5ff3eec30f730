// Fuzzes the result-line encoder (common/result_json.h) with results whose
// every field comes from the fuzz bytes: ids, URLs, bodies, header names and
// values that are not UTF-8, control characters, any double for the latency.
// Each line must be one valid JSON object (nlohmann's strict parser, which
// also rejects invalid UTF-8) that gives the fields back.
//
// Input: seq (8 bytes), index (8), status (4), flags (1: ok, truncated),
// attempts (4), latency (8: the double's bits), body_bytes (8), error kind
// (1), header count (1, at most 4); then id, url, error_message, worker and
// each header's name and value as text (fuzz_util.h); the rest is the body.
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/escaping.h"
#include "common/result_json.h"
#include "fuzz/fuzz_util.h"
#include "nlohmann/json.hpp"

namespace fetchfleet {
namespace {

double AnyDouble(uint64_t bits) {
  // All bit patterns: NaN, infinities, subnormals, huge values.
  double value;
  static_assert(sizeof(value) == sizeof(bits));
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}
// Lossy: what AppendJsonStringLossy promises for `text`.
std::string Lossy(const std::string& text) {
  if (IsValidUtf8(text)) return text;
  std::string out = text;
  for (char& c : out) {
    if (static_cast<unsigned char>(c) >= 0x80) c = '?';
  }
  return out;
}

void Run(fuzz::ByteReader& in) {
  v1::FetchResult r;
  r.set_seq(in.Bits(8));
  r.set_index(in.Bits(8));
  r.set_status(static_cast<int32_t>(in.Bits(4)));
  uint64_t flags = in.Bits(1);
  r.set_ok(flags & 1);
  r.set_truncated(flags & 2);
  r.set_attempts(static_cast<uint32_t>(in.Bits(4)));
  r.set_latency_ms(AnyDouble(in.Bits(8)));
  r.set_body_bytes(in.Bits(8));
  // Any enum value, known or not (a newer worker's).
  r.set_error(static_cast<v1::ErrorKind>(static_cast<int8_t>(in.Bits(1))));
  int headers = static_cast<int>(in.Bits(1) % 5);
  r.set_id(in.Text(64));
  r.set_url(in.Text(64));
  r.set_error_message(in.Text(64));
  r.set_worker(in.Text(64));
  for (int i = 0; i < headers; ++i) {
    v1::Header* h = r.add_headers();
    h->set_name(in.Text(64));
    h->set_value(in.Text(64));
  }
  r.set_body(in.Rest());

  std::string line;
  AppendResultJson(r, &line);
  FUZZ_CHECK(line.find('\n') == std::string::npos);  // one line per result
  nlohmann::json doc = nlohmann::json::parse(line, nullptr, false);
  FUZZ_CHECK(!doc.is_discarded());
  FUZZ_CHECK(doc.is_object());
  FUZZ_CHECK(doc["seq"] == r.seq());
  FUZZ_CHECK(doc["id"] == Lossy(r.id()));
  FUZZ_CHECK(doc["url"] == Lossy(r.url()));
  FUZZ_CHECK(doc["status"] == r.status());
  FUZZ_CHECK(doc["ok"] == r.ok());
  FUZZ_CHECK(doc["attempts"] == r.attempts());
  FUZZ_CHECK(doc["latency_ms"].is_number());
  FUZZ_CHECK(doc["body_bytes"] == r.body_bytes());
  if (r.body().empty()) {
    FUZZ_CHECK(!doc.contains("body") && !doc.contains("body_base64"));
  } else if (doc.contains("body")) {
    FUZZ_CHECK(doc["body"] == r.body());
  } else {
    std::string decoded;
    FUZZ_CHECK(
        absl::Base64Unescape(doc["body_base64"].get<std::string>(), &decoded));
    FUZZ_CHECK(decoded == r.body());
  }
  if (!r.ok()) FUZZ_CHECK(doc["error"].is_string());
  if (r.headers_size() > 0) FUZZ_CHECK(doc["headers"].is_object());
}

}  // namespace
}  // namespace fetchfleet

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = fetchfleet::fuzz::QuietLogs();
  (void)quiet;
  fetchfleet::fuzz::ByteReader in(data, size);
  fetchfleet::Run(in);
  return 0;
}
