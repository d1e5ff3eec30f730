// Wire limits: the sizes every process of the fleet agrees on, so that what one
// side may send the other side accepts, and nothing a peer controls is
// unbounded.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fetchfleet {

// The most a job may ask a worker to keep of one response body. A worker
// buffers a body whole before it reports it, so this caps a worker's memory per
// transfer; the coordinator refuses a larger `--max-body`.
inline constexpr uint64_t kMaxBodyCapBytes = 32 << 20;

// The budget of one gRPC message between the coordinator and a worker, well
// under the channels' 64 MiB limit: batches are cut at this size, and a result
// that does not fit on its own becomes a `too_large` result.
inline constexpr size_t kMaxMessageBytes = 16 << 20;

// The channels' receive limit (gRPC's default is 4 MiB): room for one message
// of kMaxMessageBytes plus one body at kMaxBodyCapBytes.
inline constexpr int kMaxReceiveMessageBytes = 64 << 20;

}  // namespace fetchfleet
