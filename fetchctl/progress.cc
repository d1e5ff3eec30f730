#include "fetchctl/progress.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_format.h"

namespace fetchfleet::fetchctl {

void Progress::Add(uint64_t done, uint64_t failed) {
  done_ += done;
  failed_ += failed;
  if (!enabled_) return;
  absl::Time now = absl::Now();
  if (now - last_draw_ < absl::Milliseconds(100)) return;
  last_draw_ = now;
  Draw();
}

void Progress::Draw() {
  double elapsed = absl::ToDoubleSeconds(absl::Now() - start_);
  double rate = elapsed > 0 ? done_ / elapsed : 0;
  std::string line;
  if (total_ > 0) {
    constexpr int kWidth = 30;
    int filled = static_cast<int>(
        kWidth * std::min<double>(1.0, double(done_) / total_));
    std::string bar =
        std::string(filled, '#') + std::string(kWidth - filled, '.');
    std::string eta = "?";
    if (rate > 0 && total_ >= done_) {
      eta = absl::StrFormat("%.0fs", (total_ - done_) / rate);
    }
    line = absl::StrFormat("[%s] %d/%d  %.0f req/s  %d failed  ETA %s", bar,
                           done_, total_, rate, failed_, eta);
  } else {
    line =
        absl::StrFormat("%d done  %.0f req/s  %d failed", done_, rate, failed_);
  }
  std::fprintf(stderr, "\r\x1b[2K%s", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::Clear() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r\x1b[2K");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace fetchfleet::fetchctl
