#include "tests/testing/http_test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace fetchfleet::testing {
namespace {

std::string JsonQuote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out + "\"";
}

std::string Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 302:
      return "Found";
    case 404:
      return "Not Found";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

std::string Response(int status, const std::string& body,
                     const std::vector<std::string>& extra_headers = {}) {
  std::string out = absl::StrCat("HTTP/1.1 ", status, " ", Reason(status),
                                 "\r\nContent-Length: ", body.size(), "\r\n");
  for (const std::string& h : extra_headers) absl::StrAppend(&out, h, "\r\n");
  absl::StrAppend(&out, "\r\n", body);
  return out;
}

}  // namespace

HttpTestServer::HttpTestServer() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
          0 ||
      ::listen(listen_fd_, 1024) != 0) {
    std::perror("HttpTestServer bind/listen");
    std::abort();
  }
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

HttpTestServer::~HttpTestServer() { Stop(); }

std::string HttpTestServer::Url(const std::string& path) const {
  return absl::StrCat("http://127.0.0.1:", port_, path);
}

void HttpTestServer::SleepUnlessStopped(absl::Duration d) {
  // One wake-up, not one every few ms: a thousand sleeping requests must not
  // load the CPU the benchmark measures.
  std::unique_lock<std::mutex> lock(sleep_mu_);
  sleep_cv_.wait_for(lock, absl::ToChronoMilliseconds(d),
                     [this] { return stopping_.load(); });
}

void HttpTestServer::Stop() {
  if (stopping_.exchange(true)) return;
  { std::lock_guard<std::mutex> lock(sleep_mu_); }
  sleep_cv_.notify_all();
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    threads.swap(connections_);
  }
  for (std::thread& t : threads) t.join();
}

void HttpTestServer::AcceptLoop() {
  while (!stopping_) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_) return;
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    open_fds_.insert(fd);
    connections_.emplace_back([this, fd] { Serve(fd); });
  }
}

void HttpTestServer::Serve(int fd) {
  std::string buffer;
  char chunk[16384];
  for (;;) {
    size_t header_end;
    while ((header_end = buffer.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = ::read(fd, chunk, sizeof(chunk));
      if (n <= 0) goto done;
      buffer.append(chunk, n);
    }
    {
      std::vector<std::string> lines =
          absl::StrSplit(buffer.substr(0, header_end), "\r\n");
      std::vector<std::string> request_line = absl::StrSplit(lines[0], ' ');
      if (request_line.size() < 2) goto done;
      std::map<std::string, std::string> headers;
      for (size_t i = 1; i < lines.size(); ++i) {
        size_t colon = lines[i].find(':');
        if (colon == std::string::npos) continue;
        headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
            std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
      }
      size_t body_len = 0;
      if (headers.count("content-length")) {
        absl::SimpleAtoi(headers["content-length"], &body_len);
      }
      while (buffer.size() < header_end + 4 + body_len) {
        ssize_t n = ::read(fd, chunk, sizeof(chunk));
        if (n <= 0) goto done;
        buffer.append(chunk, n);
      }
      std::string body = buffer.substr(header_end + 4, body_len);
      buffer.erase(0, header_end + 4 + body_len);
      int now = ++in_progress_;
      int prev = max_concurrent_.load();
      while (now > prev && !max_concurrent_.compare_exchange_weak(prev, now)) {
      }
      bool close = false;
      std::string response =
          Respond(request_line[0], request_line[1], headers, body, &close);
      --in_progress_;
      size_t off = 0;
      while (off < response.size()) {
        ssize_t n = ::send(fd, response.data() + off, response.size() - off,
                           MSG_NOSIGNAL);
        if (n <= 0) goto done;
        off += n;
      }
      if (close) goto done;
    }
  }
done:
  std::lock_guard<std::mutex> lock(mu_);
  open_fds_.erase(fd);
  ::close(fd);
}

std::string HttpTestServer::Respond(
    const std::string& method, const std::string& target,
    const std::map<std::string, std::string>& headers, const std::string& body,
    bool* close) {
  std::string path = target.substr(0, target.find('?'));
  std::string query = target.find('?') == std::string::npos
                          ? ""
                          : target.substr(target.find('?') + 1);
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  int count = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++hits_[path];
    arrivals_.emplace_back(path, absl::Now());
    if (parts.size() >= 2 && (parts[0] == "flaky" || parts[0] == "throttle")) {
      count = ++counters_[parts[1]];
    }
    // /strict/KEY/N: an API that takes at most N requests for KEY in any
    // second and answers the rest 429 (those do not count).
    int limit = 0;
    if (parts.size() >= 3 && parts[0] == "strict" &&
        absl::SimpleAtoi(parts[2], &limit)) {
      std::deque<absl::Time>& recent = strict_[parts[1]];
      absl::Time now = absl::Now();
      while (!recent.empty() && recent.front() <= now - absl::Seconds(1))
        recent.pop_front();
      if (static_cast<int>(recent.size()) >= limit) {
        ++rejected_;
        return Response(429, "over the limit", {"Retry-After: 1"});
      }
      recent.push_back(now);
    }
  }
  if (path == "/_hits") {
    // For a test outside this process (make test-docker): every request
    // served so far, these excluded.
    // The first and last arrival give the rate the requests came in at.
    std::lock_guard<std::mutex> lock(mu_);
    int total = 0;
    for (const auto& [p, hits] : hits_) total += p == "/_hits" ? 0 : hits;
    int64_t first_ms = 0, last_ms = 0;
    for (const auto& [p, at] : arrivals_) {
      if (p == "/_hits") continue;
      int64_t ms = absl::ToUnixMillis(at);
      if (first_ms == 0) first_ms = ms;
      last_ms = ms;
    }
    return Response(
        200, absl::StrCat("{\"total\": ", total, ", \"first_ms\": ", first_ms,
                          ", \"last_ms\": ", last_ms, "}"));
  }
  int n = 0;
  if (parts.size() == 2 && parts[0] == "status" &&
      absl::SimpleAtoi(parts[1], &n)) {
    return Response(n, absl::StrCat("status ", n));
  }
  if (parts.size() == 2 && parts[0] == "delay" &&
      absl::SimpleAtoi(parts[1], &n)) {
    SleepUnlessStopped(absl::Milliseconds(n));
    return Response(200, absl::StrCat("slept ", n));
  }
  if (parts.size() == 2 && parts[0] == "bytes" &&
      absl::SimpleAtoi(parts[1], &n)) {
    return Response(200, std::string(n, 'x'));
  }
  if (path == "/hang") {
    SleepUnlessStopped(absl::Hours(1));
    *close = true;
    return "";
  }
  if (parts.size() == 2 && parts[0] == "big-header" &&
      absl::SimpleAtoi(parts[1], &n)) {
    return Response(200, "big header",
                    {absl::StrCat("X-Big: ", std::string(n, 'h'))});
  }
  if (parts.size() == 2 && parts[0] == "many-headers" &&
      absl::SimpleAtoi(parts[1], &n)) {
    std::vector<std::string> many;
    for (int i = 0; i < n; ++i)
      many.push_back(absl::StrCat("X-H", i, ": ", std::string(1000, 'h')));
    return Response(200, "many headers", many);
  }
  if (path == "/http09") {
    *close = true;
    return "garbage, not an HTTP response\r\n";
  }
  if (path == "/bad-chunk") {
    *close = true;
    return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
  }
  if (path == "/binary")
    return Response(200, std::string("\xff\xfe\x00\x01", 4));
  if (path == "/latin1-header") {
    return Response(200, "caf\xe9",
                    {"X-Name: caf\xe9"});  // ISO-8859-1, not UTF-8
  }
  if (path == "/redirect" && absl::StartsWith(query, "to=")) {
    return Response(302, "", {absl::StrCat("Location: ", query.substr(3))});
  }
  if (parts.size() == 3 && parts[0] == "flaky" &&
      absl::SimpleAtoi(parts[2], &n)) {
    return count <= n ? Response(503, "try again")
                      : Response(200, absl::StrCat("ok after ", count));
  }
  int seconds = 0;
  if (parts.size() == 4 && parts[0] == "throttle" &&
      absl::SimpleAtoi(parts[2], &n) && absl::SimpleAtoi(parts[3], &seconds)) {
    return count <= n ? Response(429, "slow down",
                                 {absl::StrCat("Retry-After: ", seconds)})
                      : Response(200, absl::StrCat("ok after ", count));
  }
  if (path == "/echo") {
    std::string json =
        absl::StrCat("{\"method\": ", JsonQuote(method), ", \"headers\": {");
    bool first = true;
    for (const auto& [k, v] : headers) {
      absl::StrAppend(&json, first ? "" : ", ", JsonQuote(k), ": ",
                      JsonQuote(v));
      first = false;
    }
    absl::StrAppend(&json, "}, \"body\": ", JsonQuote(body), "}");
    return Response(200, json, {"Content-Type: application/json"});
  }
  // /switch/NAME: a service the test (or /switch/NAME/down and /up) takes
  // down and brings back: 503 while down, else {"name": NAME}.
  if (parts.size() >= 2 && parts[0] == "switch") {
    if (parts.size() == 3 && (parts[2] == "down" || parts[2] == "up")) {
      SetDown(parts[1], parts[2] == "down");
      return Response(200, absl::StrCat(parts[1], " is ", parts[2]));
    }
    if (IsDown(parts[1])) return Response(503, "down");
    return Response(200, absl::StrCat("{\"name\": ", JsonQuote(parts[1]), "}"),
                    {"Content-Type: application/json"});
  }
  if (parts.size() == 2 && parts[0] == "json") {
    // /json/NAME?delay=MS answers after MS milliseconds.
    if (absl::StartsWith(query, "delay=") &&
        absl::SimpleAtoi(query.substr(6), &n)) {
      SleepUnlessStopped(absl::Milliseconds(n));
    }
    return Response(200, absl::StrCat("{\"name\": ", JsonQuote(parts[1]), "}"),
                    {"Content-Type: application/json"});
  }
  return Response(200, absl::StrCat("ok ", path));
}

int HttpTestServer::Hits(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = hits_.find(path);
  return it == hits_.end() ? 0 : it->second;
}

int HttpTestServer::TotalHits() const {
  std::lock_guard<std::mutex> lock(mu_);
  int total = 0;
  for (const auto& [path, n] : hits_) total += n;
  return total;
}

std::vector<std::pair<std::string, absl::Time>> HttpTestServer::Arrivals()
    const {
  std::lock_guard<std::mutex> lock(mu_);
  return arrivals_;
}

}  // namespace fetchfleet::testing
