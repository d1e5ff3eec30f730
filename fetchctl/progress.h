// Progress: the one-line progress bar fetchctl draws on stderr while a job runs
// (only when stderr is a terminal): done/total, rate, failures, ETA. Redraws at
// most ten times a second.
//
// Not thread-safe: the thread that reads results owns it.
#pragma once

#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fetchfleet::fetchctl {

class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled), start_(absl::Now()) {}

  void SetTotal(uint64_t total) { total_ = total; }
  void Add(uint64_t done, uint64_t failed);
  // Clear erases the bar (before the summary line).
  void Clear();

 private:
  void Draw();

  bool enabled_;
  absl::Time start_;
  absl::Time last_draw_ = absl::InfinitePast();
  uint64_t total_ = 0;  // 0 = not known yet
  uint64_t done_ = 0;
  uint64_t failed_ = 0;
  bool drawn_ = false;
};

}  // namespace fetchfleet::fetchctl
