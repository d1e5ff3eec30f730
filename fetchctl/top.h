// `fetchctl top`: a live view of the fleet (workers, busiest rate keys,
// breakers not closed, running jobs), redrawn in place every --interval on
// the terminal's alternate screen until `q` (or Ctrl-C). The listings are read
// on a poller thread, since gRPC's calls block; the calling thread only waits
// for keys, new snapshots, resizes and signals, and draws (top_view.h makes
// the lines). When stdout is not a terminal it prints one snapshot as plain
// text instead, for scripts.
//
// TopCommand runs on fetchctl's main thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/time/time.h"

namespace fetchfleet::fetchctl {

struct TopOptions {
  std::string coordinator;  // the address, for the title
  absl::Duration interval = absl::Seconds(1);
};

// kMinTopInterval and kMaxTopInterval bound --interval.
inline constexpr absl::Duration kMinTopInterval = absl::Milliseconds(100);
inline constexpr absl::Duration kMaxTopInterval = absl::Minutes(1);

// TopCommand shows the live view when stdout is a terminal, else one
// snapshot (two readings --interval apart, so that rates can be told).
// Returns the exit status: 0 on `q`, 128+signal on SIGINT/SIGTERM, 2 when the
// coordinator refuses the caller, 3 when a snapshot cannot be read.
int TopCommand(const std::shared_ptr<grpc::Channel>& channel,
               const TopOptions& options);

// TopIsLive: whether TopCommand would show the live view (stdout is a
// terminal).
bool TopIsLive();

}  // namespace fetchfleet::fetchctl
