// MaxInWindow: the most of `times` (any order) that fall in one closed window
// of length `window`: the quantity the rate-limit guarantee bounds by
// R * window + B.
#pragma once

#include <algorithm>
#include <vector>

#include "absl/time/time.h"

namespace fetchfleet::testing {

inline int MaxInWindow(std::vector<absl::Time> times, absl::Duration window) {
  std::sort(times.begin(), times.end());
  int best = 0;
  size_t j = 0;
  for (size_t i = 0; i < times.size(); ++i) {
    if (j < i) j = i;
    while (j + 1 < times.size() && times[j + 1] - times[i] <= window) ++j;
    best = std::max(best, static_cast<int>(j - i + 1));
  }
  return best;
}

}  // namespace fetchfleet::testing
