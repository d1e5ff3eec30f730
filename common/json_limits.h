// JSON limits: one size and depth bound on every JSON document the servers
// parse (request lines, Aggregate documents, upstream bodies merged into an
// Aggregate answer). nlohmann's copy, dump and compare recurse once per level,
// so a document nested 100,000 deep would overflow a thread's stack; checking
// the nesting before parsing keeps every later walk shallow. Thread-safe
// (pure).
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fetchfleet {

// The deepest nesting of arrays and objects accepted anywhere.
inline constexpr int kMaxJsonDepth = 64;

// CheckJsonShape returns INVALID_ARGUMENT naming the problem when `text` is
// over `max_bytes` or nests arrays and objects deeper than `max_depth`. It does
// not validate the syntax (the parser does); it only makes parsing safe.
absl::Status CheckJsonShape(absl::string_view text, size_t max_bytes,
                            int max_depth = kMaxJsonDepth);

}  // namespace fetchfleet
