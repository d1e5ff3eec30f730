// HttpTestServer: a real HTTP/1.1 server on 127.0.0.1:<kernel-picked port> for
// tests and the demo. A thread per connection (keep-alive); that is fine for a
// test target and is not how fetchfleet itself works. Routes:
//   /status/N            respond N
//   /delay/MS            respond 200 after MS milliseconds
//   /bytes/N             N bytes of 'x'
//   /binary              bytes that are not UTF-8
//   /latin1-header       a header value and body in ISO-8859-1 (not UTF-8)
//   /redirect?to=URL     302 to URL
//   /flaky/KEY/N         503 for the first N requests of KEY, then 200
//   /throttle/KEY/N/S    429 with Retry-After: S for the first N requests of
//                        KEY, then 200
//   /echo                the request's method, headers and body, as JSON
//   /json/NAME           {"name": "NAME"}
//   /hang                never answers (until the server stops)
//   /big-header/N        200 with one header line of N bytes
//   /many-headers/N      200 with N headers of 1000 bytes each
//   /http09              bytes that are no HTTP response (HTTP/0.9), then close
//   /bad-chunk           a chunked body whose chunk size is not hex, then close
//   anything else        200 "ok PATH"
// It records each request's path and arrival time. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"

namespace fetchfleet::testing {

class HttpTestServer {
 public:
  HttpTestServer();  // binds and starts serving
  ~HttpTestServer();

  int port() const { return port_; }
  std::string Url(const std::string& path) const;

  // Hits counts requests whose path (without query) equals `path`.
  int Hits(const std::string& path) const;
  int TotalHits() const;
  // MaxConcurrent is the most requests seen in progress at once.
  int MaxConcurrent() const { return max_concurrent_.load(); }
  // Rejected: requests /strict/ answered 429.
  int Rejected() const {
    std::lock_guard<std::mutex> lock(mu_);
    return rejected_;
  }
  std::vector<std::pair<std::string, absl::Time>> Arrivals() const;
  // SetDown takes /switch/NAME down (503 until brought back; GET
  // /switch/NAME/down and /switch/NAME/up do the same over HTTP).
  void SetDown(const std::string& name, bool down) {
    std::lock_guard<std::mutex> lock(mu_);
    if (down) {
      down_.insert(name);
    } else {
      down_.erase(name);
    }
  }
  bool IsDown(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    return down_.count(name) > 0;
  }

  void Stop();

 private:
  void AcceptLoop();
  void SleepUnlessStopped(absl::Duration d);
  void Serve(int fd);
  // Respond returns the raw bytes to send; `close` set: close the connection
  // after them.
  std::string Respond(const std::string& method, const std::string& target,
                      const std::map<std::string, std::string>& headers,
                      const std::string& body, bool* close);

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<std::thread> connections_;
  std::set<int> open_fds_;
  std::map<std::string, int> hits_;
  std::map<std::string, int> counters_;
  std::map<std::string, std::deque<absl::Time>> strict_;
  int rejected_ = 0;
  std::set<std::string> down_;
  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;
  std::vector<std::pair<std::string, absl::Time>> arrivals_;
  std::atomic<int> in_progress_{0};
  std::atomic<int> max_concurrent_{0};
};

}  // namespace fetchfleet::testing
