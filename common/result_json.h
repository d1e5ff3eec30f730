// Result lines: the JSON Lines output format (README, "Output"), one object per
// result, fields in the documented order. Bodies that are valid UTF-8 go out as
// "body", others as "body_base64". Hand-written rather than through a JSON
// library: it runs once per result on the hot path of every job. Thread-safe
// (pure).
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet {

// ErrorKindName returns the contract's name for `kind` ("timeout",
// "circuit_open", ...), or
// "" for ERROR_NONE.
const char* ErrorKindName(v1::ErrorKind kind);

// IsValidUtf8 reports whether `text` is well-formed UTF-8 (no overlongs, no
// surrogates).
bool IsValidUtf8(absl::string_view text);

// AppendJsonStringLossy appends `text` as a quoted JSON string, bytes that are
// not part of valid UTF-8 replaced by '?'.
void AppendJsonStringLossy(absl::string_view text, std::string* out);

// AppendJsonString appends `text` as a quoted JSON string. `text` must be valid
// UTF-8; control characters are escaped.
void AppendJsonString(absl::string_view text, std::string* out);

// AppendResultJson appends one result line (without the newline) to `out`.
void AppendResultJson(const v1::FetchResult& result, std::string* out);

}  // namespace fetchfleet
