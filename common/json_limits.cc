#include "common/json_limits.h"

#include "absl/strings/str_cat.h"

namespace fetchfleet {

absl::Status CheckJsonShape(absl::string_view text, size_t max_bytes,
                            int max_depth) {
  if (text.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the JSON is ", text.size(), " bytes; the limit is ", max_bytes));
  }
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth) {
          return absl::InvalidArgumentError(
              absl::StrCat("the JSON nests arrays and objects deeper than ",
                           max_depth, " levels"));
        }
        break;
      case ']':
      case '}':
        // Unbalanced closers are the parser's to reject.
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return absl::OkStatus();
}

}  // namespace fetchfleet
