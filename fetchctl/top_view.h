// TopView: what `fetchctl top` shows, as plain lines, from snapshots of the
// coordinator's listings. Rates (a worker's req/s, a job's req/s and ETA) are
// the difference between two snapshots over the time between them; the first
// snapshot has none. The view fits a width and a height (0: no bound, for the
// plain snapshot) and knows nothing of terminals, so it is tested without one.
//
// Thread-safe (pure functions over values).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet::fetchctl {

// TopSnapshot: the coordinator's listings at one moment.
struct TopSnapshot {
  absl::Time taken;  // when the listings were read (a monotonic-enough clock)
  std::vector<v1::WorkerInfo> workers;
  v1::LimitTable limits;
  std::vector<v1::BreakerInfo> breakers;
  std::vector<v1::JobStatus> jobs;
};

// TopFrame: what one redraw shows.
struct TopFrame {
  std::string coordinator;  // the address, for the title
  // The last good snapshot and the one before it (null: none yet).
  const TopSnapshot* current = nullptr;
  const TopSnapshot* previous = nullptr;
  int64_t now_unix_ms = 0;  // for ejection time left
  std::string clock;        // wall clock for the title, e.g. "17:04:05"
  // Set when the last refresh failed: shown on the status line, above the
  // last good data.
  std::string error;
  bool keys = false;  // show the key help ("q quits")
};

// RenderTop lays the frame out in at most `height` lines of at most `width`
// characters (0: unbounded). Sections: workers, busiest rate keys (most
// waiting first, then highest achieved rate), breakers not closed, running
// jobs; a section longer than its share ends with "... N more". Bytes that
// are not printable ASCII are shown as '?'.
std::vector<std::string> RenderTop(const TopFrame& frame, int width,
                                   int height);

// FormatEta: "45s", "3m05s", "2h10m", "3d04h", "-" for none (negative,
// infinite or NaN), ">99d" beyond 99 days.
std::string FormatEta(double seconds);

// FitCell cuts `text` to `width` characters, ending a cut one with "~".
std::string FitCell(const std::string& text, int width);

// RatePerSecond: (now - before) / seconds, or a negative value when it cannot
// be told (no time passed, or the counter went back: a restart).
double RatePerSecond(uint64_t before, uint64_t now, double seconds);

}  // namespace fetchfleet::fetchctl
