// Request lines: the job input format (README, "Input"). One request per line,
// a bare URL or a JSON object; blank lines and '#' comments are skipped. A bad
// line never stops a job: it becomes its own `invalid_request` (or `too_large`)
// result naming the line and the problem.
//
// Validation happens once, here, where the coordinator reads input; the worker
// checks the scheme again and enforces the egress policy on the connected
// address. Thread-safe (pure).
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet {

// Limits on what a request line may carry.
inline constexpr size_t kMaxLineBytes = 2 << 20;
inline constexpr size_t kMaxUrlBytes = 8192;
inline constexpr size_t kMaxHeaderValueBytes = 8192;
inline constexpr size_t kMaxHeadersBytes = 65536;
inline constexpr size_t kMaxHeaders = 100;
inline constexpr size_t kMaxRequestBodyBytes = 1 << 20;
inline constexpr uint32_t kMaxAttemptsLimit = 20;
inline constexpr uint32_t kMaxTimeoutMs = 600000;
inline constexpr uint32_t kDefaultMaxAttempts = 3;
inline constexpr uint32_t kDefaultTimeoutMs = 10000;
inline constexpr uint64_t kDefaultBodyCapBytes = 1 << 20;

// ParsedLine is one input line's outcome: skipped, a request, or an error
// result.
struct ParsedLine {
  enum class Kind { kSkip, kRequest, kError };
  Kind kind = Kind::kSkip;
  v1::FetchRequest request;  // kRequest
  // kError: the result to return for this line (error, error_message, id, index
  // filled).
  v1::FetchResult error;
};

// ParseRequestLine reads line `line_number` (1-based) of a job. `index` is the
// request's position in the job; `options` supply defaults for attempts and
// timeout.
ParsedLine ParseRequestLine(absl::string_view line, uint64_t line_number,
                            uint64_t index, const v1::JobOptions& options);

// ParseRequestObject reads one request from a JSON object's text (the fields
// of a JSON request line) and validates it; defaults are not filled in.
absl::StatusOr<v1::FetchRequest> ParseRequestObject(absl::string_view json);

// ValidateJobOptions checks a job's options against the same limits (a raw
// gRPC client is not fetchctl): attempts, timeout, body cap (at most
// kMaxBodyCapBytes, which a worker buffers per transfer) and the breaker
// policy. The error names the option.
absl::Status ValidateJobOptions(const v1::JobOptions& options);

// ValidateFetchUrl checks an http(s) URL and returns its host name
// (lower-cased, without port or brackets) for the default rate key.
absl::StatusOr<std::string> ValidateFetchUrl(absl::string_view url);

}  // namespace fetchfleet
