// CurlFetcher: HTTP attempts on one event loop through libcurl's multi_socket
// interface (the shape of curl's hiperfifo example): curl tells us which
// sockets to watch and when to wake it; every readiness event or timer expiry
// calls curl_multi_socket_action; then finished transfers are drained from
// curl_multi_info_read. Thousands of transfers share one thread, and one multi
// handle, so connections and HTTP/2 streams are reused across requests.
//
// The egress policy runs in curl's open-socket callback, on the address about
// to be connected to: after DNS, and again for every redirect hop that needs a
// new connection.
//
// Requests to one host:port share a connection only where HTTP/2 multiplexes
// them: a new https transfer waits for an existing connection's ALPN answer
// (PIPEWAIT) rather than opening a second one; plain http never waits, since
// one HTTP/1.1 response that never comes would hold every request queued
// behind it. Each host gets at most max_host_connections connections; further
// transfers queue in curl, within their timeouts.
//
// Loop thread only.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "common/egress_policy.h"
#include "common/event_loop.h"
#include "common/retry_policy.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet::worker {

// AttemptTimings: libcurl's phases of one attempt, each measured from the
// attempt's start (as curl reports them, so they add up: dns <= connect <=
// tls <= first_byte <= total). A phase the attempt never reached, or did not
// need (a reused connection has no DNS, connect or TLS), is 0.
struct AttemptTimings {
  absl::Duration dns;
  absl::Duration connect;
  absl::Duration tls;
  absl::Duration first_byte;
  absl::Duration total;
};

// AttemptResult is the outcome of one HTTP attempt.
struct AttemptResult {
  AttemptOutcome outcome;
  std::string error_message;
  std::string body;
  uint64_t body_bytes = 0;
  bool truncated = false;
  std::vector<v1::Header> headers;
  double latency_ms = 0;
  // Wall-clock time Start was called: where the attempt's span begins (the
  // loop's clock is monotonic, good for durations but not for timestamps).
  absl::Time started;
  AttemptTimings timings;
};

struct AttemptSettings {
  bool include_headers = false;
  uint64_t body_cap_bytes = 1 << 20;
  // W3C trace context headers for this attempt (empty: none). When set they
  // replace any traceparent/tracestate among the request's own headers.
  std::string traceparent;
  std::string tracestate;
};

class CurlFetcher {
 public:
  using Done = absl::AnyInvocable<void(AttemptResult)>;
  static constexpr long kDefaultMaxHostConnections = 32;

  struct Options {
    long max_total_connections = 0;  // 0 = no cap
    // Connections per host:port (each fetch loop); 0 = no cap.
    long max_host_connections = kDefaultMaxHostConnections;
    long max_connects = 1024;  // connection cache size
    std::string user_agent = "fetchfleet/0.1";
    // Local address to connect from; empty: the system's choice.
    std::string source_address;
  };

  CurlFetcher(EventLoop* loop, const EgressPolicy* policy, Options options);
  ~CurlFetcher();
  CurlFetcher(const CurlFetcher&) = delete;
  CurlFetcher& operator=(const CurlFetcher&) = delete;

  // Start begins one attempt of `request`; `done` runs on the loop when it ends
  // (never inside Start). Returns a handle for Abort.
  uint64_t Start(const v1::FetchRequest& request,
                 const AttemptSettings& settings, Done done);
  // Abort stops an attempt; its `done` is not called.
  void Abort(uint64_t handle);
  size_t in_flight() const { return transfers_.size(); }

 private:
  struct Transfer;

  static int SocketCallback(CURL* easy, curl_socket_t fd, int what, void* self,
                            void* socketp);
  static int TimerCallback(CURLM* multi, long timeout_ms, void* self);
  static curl_socket_t OpenSocketCallback(void* transfer, curlsocktype purpose,
                                          curl_sockaddr* address);
  static size_t WriteCallback(char* data, size_t size, size_t count,
                              void* transfer);
  static size_t HeaderCallback(char* data, size_t size, size_t count,
                               void* transfer);

  void OnSocketEvent(curl_socket_t fd, uint32_t events);
  void OnTimeout();
  void DrainFinished();
  void Finish(Transfer* transfer, CURLcode code);
  // Expire fails an attempt still running past its timeout.
  void Expire(uint64_t id);
  void FailSoon(uint64_t id, AttemptResult result);
  CURL* TakeEasy();
  void ReturnEasy(CURL* easy);

  EventLoop* const loop_;
  const EgressPolicy* const policy_;
  const Options options_;
  CURLM* multi_;
  EventLoop::TimerId timer_ = 0;
  uint64_t next_id_ = 1;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Transfer>> transfers_;
  // Finished easy handles, reset and kept for reuse: a fresh handle costs
  // several allocations and a large zeroed struct per attempt. Bounded by the
  // most in flight at once.
  std::vector<CURL*> idle_easy_;
};

}  // namespace fetchfleet::worker
