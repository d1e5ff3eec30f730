#include "worker/curl_fetcher.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/logging.h"

namespace fetchfleet::worker {

struct CurlFetcher::Transfer {
  uint64_t id = 0;
  CurlFetcher* fetcher = nullptr;
  CURL* easy = nullptr;
  curl_slist* request_headers = nullptr;
  std::string body;  // request body, alive while curl reads it
  AttemptSettings settings;
  Done done;
  AttemptResult result;
  std::string
      blocked_message;      // set when the egress policy refused a connection
  absl::Time started;       // when Start was called, on the loop's clock
  absl::Time started_wall;  // the same instant on the wall clock
  // The current response's status line was read, and its blank line ending
  // the headers (a redirect or 1xx starts a new response).
  bool in_headers = false;
  char error[CURL_ERROR_SIZE] = {};  // curl's detailed message
  EventLoop::TimerId deadline = 0;   // see Expire

  ~Transfer() {
    if (deadline != 0) fetcher->loop_->CancelTimer(deadline);
    if (easy != nullptr) fetcher->ReturnEasy(easy);
    curl_slist_free_all(request_headers);
  }
};

namespace {

// Our own deadline fires this long after the attempt's timeout, so that
// curl's, when it applies, reports first.
constexpr absl::Duration kDeadlineSlack = absl::Milliseconds(20);

// A global init that runs once, before any thread uses curl.
struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

void EnsureCurlGlobal() { static CurlGlobal global; }

v1::ErrorKind ClassifyCurlError(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return v1::ERROR_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return v1::ERROR_DNS;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
      return v1::ERROR_TLS;
    case CURLE_UNSUPPORTED_PROTOCOL:
      return v1::ERROR_BLOCKED;  // a redirect to a scheme other than http(s)
    case CURLE_FILESIZE_EXCEEDED:
      return v1::ERROR_TOO_LARGE;
    case CURLE_URL_MALFORMAT:
      return v1::ERROR_INVALID_REQUEST;
    default:
      // Connection refused, reset, nothing received, partial transfers:
      // transient.
      return v1::ERROR_CONNECT;
  }
}

// IsHttps: whether `url` may end up on HTTP/2 (negotiated by ALPN over TLS;
// fetchfleet does not speak h2c).
bool IsHttps(absl::string_view url) {
  return url.size() >= 8 &&
         absl::EqualsIgnoreCase(url.substr(0, 8), "https://");
}

// ProtocolError is set when curl's failure was the server breaking HTTP (a
// response no retry will fix, and no sign the upstream is down): the message
// to report. Empty otherwise.
std::string ProtocolError(CURLcode code, absl::string_view detail,
                          bool in_headers) {
  switch (code) {
    case CURLE_OUT_OF_MEMORY:
      // curl 7.88 reports a header line over CURL_MAX_HTTP_HEADER this way,
      // with no message: the status line was read, the headers never ended.
      if (in_headers) {
        return "invalid HTTP response: a response header over the 100 KiB cap";
      }
      return "";
    case CURLE_UNSUPPORTED_PROTOCOL:
      // Also a refused scheme (`Protocol "file" not supported...`), which is
      // an egress refusal, not the server's fault.
      if (absl::StartsWith(detail, "Protocol ")) return "";
      break;
    case CURLE_RECV_ERROR:
      // Mostly the socket (reset by peer: transient); these are the server's
      // framing.
      if (absl::StrContains(detail, "Too large response headers")) {
        return absl::StrCat(
            "invalid HTTP response: the response headers are over the 300 KiB "
            "cap (",
            detail, ")");
      }
      if (!absl::StrContains(detail, "chunk")) return "";
      break;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
      break;
    default:
      return "";
  }
  return absl::StrCat("invalid HTTP response: ",
                      detail.empty() ? curl_easy_strerror(code) : detail);
}

}  // namespace

CurlFetcher::CurlFetcher(EventLoop* loop, const EgressPolicy* policy,
                         Options options)
    : loop_(loop), policy_(policy), options_(std::move(options)) {
  EnsureCurlGlobal();
  multi_ = curl_multi_init();
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION,
                    &CurlFetcher::SocketCallback);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION,
                    &CurlFetcher::TimerCallback);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, options_.max_connects);
  if (options_.max_total_connections > 0) {
    curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                      options_.max_total_connections);
  }
  if (options_.max_host_connections > 0) {
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS,
                      options_.max_host_connections);
  }
  curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
}

CurlFetcher::~CurlFetcher() {
  for (auto& [id, transfer] : transfers_)
    curl_multi_remove_handle(multi_, transfer->easy);
  transfers_.clear();  // returns their handles to idle_easy_
  for (CURL* easy : idle_easy_) curl_easy_cleanup(easy);
  if (timer_ != 0) loop_->CancelTimer(timer_);
  curl_multi_cleanup(multi_);
}

uint64_t CurlFetcher::Start(const v1::FetchRequest& request,
                            const AttemptSettings& settings, Done done) {
  uint64_t id = next_id_++;
  auto transfer = std::make_unique<Transfer>();
  Transfer* t = transfer.get();
  t->id = id;
  t->fetcher = this;
  t->settings = settings;
  t->done = std::move(done);
  t->started = loop_->Now();
  t->started_wall = absl::Now();
  t->easy = TakeEasy();
  CURL* e = t->easy;
  if (e == nullptr) {
    AttemptResult result;
    result.outcome.error = v1::ERROR_CONNECT;
    result.error_message = "curl_easy_init failed";
    transfers_.emplace(id, std::move(transfer));
    FailSoon(id, std::move(result));
    return id;
  }
  curl_easy_setopt(e, CURLOPT_URL, request.url().c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, t);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  // No proxy from the environment (http_proxy and friends): the egress
  // policy judges the address connected to, which through a proxy would be
  // the proxy's.
  curl_easy_setopt(e, CURLOPT_PROXY, "");
  if (!options_.source_address.empty()) {
    // "host!": an address, never an interface name (no lookup).
    curl_easy_setopt(e, CURLOPT_INTERFACE,
                     ("host!" + options_.source_address).c_str());
  }
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(request.timeout_ms()));
  curl_easy_setopt(
      e, CURLOPT_CONNECTTIMEOUT_MS,
      static_cast<long>(std::min<uint32_t>(request.timeout_ms(), 10000)));
  curl_easy_setopt(e, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  // Wait for a connection that may turn out to multiplex only where one can:
  // over TLS, where ALPN may pick h2. A plain HTTP/1.1 connection whose
  // response never comes would hold every waiter for its whole timeout.
  if (IsHttps(request.url())) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION,
                   &CurlFetcher::OpenSocketCallback);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &CurlFetcher::WriteCallback);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &CurlFetcher::HeaderCallback);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t);

  const std::string& method = request.method();
  if (method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (method != "GET") {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (!request.body().empty() || method == "POST" || method == "PUT" ||
      method == "PATCH") {
    t->body = request.body();
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(t->body.size()));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body.data());
  }
  bool traced = !settings.traceparent.empty();
  for (const v1::Header& header : request.headers()) {
    // One request carries one trace context: the propagated one wins.
    if (traced && (absl::EqualsIgnoreCase(header.name(), "traceparent") ||
                   absl::EqualsIgnoreCase(header.name(), "tracestate"))) {
      continue;
    }
    std::string line = header.value().empty()
                           ? absl::StrCat(header.name(), ";")
                           : absl::StrCat(header.name(), ": ", header.value());
    t->request_headers = curl_slist_append(t->request_headers, line.c_str());
  }
  if (traced) {
    t->request_headers = curl_slist_append(
        t->request_headers,
        absl::StrCat("traceparent: ", settings.traceparent).c_str());
    if (!settings.tracestate.empty()) {
      t->request_headers = curl_slist_append(
          t->request_headers,
          absl::StrCat("tracestate: ", settings.tracestate).c_str());
    }
  }
  // curl adds "Expect: 100-continue" to larger bodies; it costs a round trip
  // for nothing.
  t->request_headers = curl_slist_append(t->request_headers, "Expect:");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->request_headers);

  transfers_.emplace(id, std::move(transfer));
  CURLMcode code = curl_multi_add_handle(multi_, e);
  if (code != CURLM_OK) {
    AttemptResult result;
    result.outcome.error = v1::ERROR_CONNECT;
    result.error_message =
        absl::StrCat("curl_multi_add_handle: ", curl_multi_strerror(code));
    FailSoon(id, std::move(result));
    return id;
  }
  // curl (7.88) checks a transfer's timeout only once it has a connection: one
  // queued behind the per-host cap, or waiting to learn whether a connection
  // multiplexes, would wait past its timeout for as long as the transfers
  // ahead of it take.
  if (request.timeout_ms() > 0) {
    t->deadline = loop_->RunAfter(
        absl::Milliseconds(request.timeout_ms()) + kDeadlineSlack,
        [this, id] { Expire(id); });
  }
  return id;
}

CURL* CurlFetcher::TakeEasy() {
  if (idle_easy_.empty()) return curl_easy_init();
  CURL* easy = idle_easy_.back();
  idle_easy_.pop_back();
  return easy;
}

void CurlFetcher::ReturnEasy(CURL* easy) {
  curl_easy_reset(easy);
  idle_easy_.push_back(easy);
}

void CurlFetcher::FailSoon(uint64_t id, AttemptResult result) {
  loop_->RunAfter(absl::ZeroDuration(),
                  [this, id, result = std::move(result)]() mutable {
                    auto it = transfers_.find(id);
                    if (it == transfers_.end()) return;
                    Done done = std::move(it->second->done);
                    result.started = it->second->started_wall;
                    transfers_.erase(it);
                    done(std::move(result));
                  });
}

namespace {

absl::Duration CurlTime(CURL* easy, CURLINFO info) {
  curl_off_t us = 0;
  curl_easy_getinfo(easy, info, &us);
  return absl::Microseconds(us);
}

// ReadTimings: curl's phase times for the transfer so far. A timed-out
// transfer's total is its time until now (curl's is 0 before it began).
AttemptTimings ReadTimings(CURL* easy, absl::Duration elapsed) {
  AttemptTimings t;
  t.dns = CurlTime(easy, CURLINFO_NAMELOOKUP_TIME_T);
  t.connect = CurlTime(easy, CURLINFO_CONNECT_TIME_T);
  t.tls = CurlTime(easy, CURLINFO_APPCONNECT_TIME_T);
  t.first_byte = CurlTime(easy, CURLINFO_STARTTRANSFER_TIME_T);
  t.total = std::max(CurlTime(easy, CURLINFO_TOTAL_TIME_T), elapsed);
  return t;
}

}  // namespace

void CurlFetcher::Expire(uint64_t id) {
  auto it = transfers_.find(id);
  if (it == transfers_.end()) return;
  Transfer* t = it->second.get();
  t->deadline = 0;
  curl_off_t connected_us = 0;
  curl_easy_getinfo(t->easy, CURLINFO_CONNECT_TIME_T, &connected_us);
  curl_multi_remove_handle(multi_, t->easy);
  AttemptResult result = std::move(t->result);
  result.outcome.error = v1::ERROR_TIMEOUT;
  result.outcome.http_status = 0;
  result.error_message =
      connected_us > 0
          ? "Timeout was reached"
          : "Timeout was reached (waiting for a connection to the host)";
  absl::Duration elapsed = loop_->Now() - t->started;
  result.latency_ms = absl::ToDoubleMilliseconds(elapsed);
  result.started = t->started_wall;
  result.timings = ReadTimings(t->easy, elapsed);
  Done done = std::move(t->done);
  transfers_.erase(it);
  done(std::move(result));
}

void CurlFetcher::Abort(uint64_t handle) {
  auto it = transfers_.find(handle);
  if (it == transfers_.end()) return;
  curl_multi_remove_handle(multi_, it->second->easy);
  transfers_.erase(it);
}

int CurlFetcher::SocketCallback(CURL* /*easy*/, curl_socket_t fd, int what,
                                void* self, void* /*socketp*/) {
  auto* fetcher = static_cast<CurlFetcher*>(self);
  if (what == CURL_POLL_REMOVE) {
    fetcher->loop_->UnwatchFd(fd);
    return 0;
  }
  uint32_t events = 0;
  if (what & CURL_POLL_IN) events |= EPOLLIN;
  if (what & CURL_POLL_OUT) events |= EPOLLOUT;
  fetcher->loop_->WatchFd(fd, events, [fetcher, fd](uint32_t ready) {
    fetcher->OnSocketEvent(fd, ready);
  });
  return 0;
}

int CurlFetcher::TimerCallback(CURLM* /*multi*/, long timeout_ms, void* self) {
  auto* fetcher = static_cast<CurlFetcher*>(self);
  if (fetcher->timer_ != 0) {
    fetcher->loop_->CancelTimer(fetcher->timer_);
    fetcher->timer_ = 0;
  }
  if (timeout_ms >= 0) {
    // Never call back into curl from inside its own callback: arm a timer
    // instead.
    fetcher->timer_ =
        fetcher->loop_->RunAfter(absl::Milliseconds(timeout_ms), [fetcher] {
          fetcher->timer_ = 0;
          fetcher->OnTimeout();
        });
  }
  return 0;
}

curl_socket_t CurlFetcher::OpenSocketCallback(void* data, curlsocktype purpose,
                                              curl_sockaddr* address) {
  auto* t = static_cast<Transfer*>(data);
  if (purpose == CURLSOCKTYPE_IPCXN) {
    absl::Status allowed = t->fetcher->policy_->Check(&address->addr);
    if (!allowed.ok()) {
      t->blocked_message = std::string(allowed.message());
      return CURL_SOCKET_BAD;
    }
  }
  return ::socket(address->family, address->socktype | SOCK_CLOEXEC,
                  address->protocol);
}

size_t CurlFetcher::WriteCallback(char* data, size_t size, size_t count,
                                  void* transfer) {
  auto* t = static_cast<Transfer*>(transfer);
  size_t n = size * count;
  t->result.body_bytes += n;
  size_t room =
      t->settings.body_cap_bytes -
      std::min<uint64_t>(t->result.body.size(), t->settings.body_cap_bytes);
  if (n > room) {
    t->result.body.append(data, room);
    t->result.truncated = true;
    return 0;  // stop the transfer: the cap is reached (CURLE_WRITE_ERROR,
               // handled as truncation)
  }
  t->result.body.append(data, n);
  return n;
}

size_t CurlFetcher::HeaderCallback(char* data, size_t size, size_t count,
                                   void* transfer) {
  auto* t = static_cast<Transfer*>(transfer);
  size_t n = size * count;
  absl::string_view line(data, n);
  if (absl::StartsWith(line, "HTTP/")) {
    t->in_headers = true;
    // A new response (after a redirect or 100-continue).
    t->result.headers.clear();
    return n;
  }
  if (line == "\r\n" || line == "\n") {
    t->in_headers = false;
    return n;
  }
  if (!t->settings.include_headers) return n;
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return n;
  std::string name =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, colon)));
  absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
  for (v1::Header& header : t->result.headers) {
    if (header.name() == name) {  // repeated headers are joined, as HTTP allows
      header.mutable_value()->append(", ");
      header.mutable_value()->append(value.data(), value.size());
      return n;
    }
  }
  v1::Header header;
  header.set_name(name);
  header.set_value(std::string(value));
  t->result.headers.push_back(std::move(header));
  return n;
}

void CurlFetcher::OnSocketEvent(curl_socket_t fd, uint32_t events) {
  int flags = 0;
  if (events & EPOLLIN) flags |= CURL_CSELECT_IN;
  if (events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
  if (events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
  int running = 0;
  curl_multi_socket_action(multi_, fd, flags, &running);
  DrainFinished();
}

void CurlFetcher::OnTimeout() {
  int running = 0;
  curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
  DrainFinished();
}

void CurlFetcher::DrainFinished() {
  int queued = 0;
  while (CURLMsg* message = curl_multi_info_read(multi_, &queued)) {
    if (message->msg != CURLMSG_DONE) continue;
    Transfer* t = nullptr;
    curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &t);
    Finish(t, message->data.result);
  }
}

void CurlFetcher::Finish(Transfer* t, CURLcode code) {
  AttemptResult& result = t->result;
  long status = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_off_t retry_after_s = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &retry_after_s);
  // From Start to here, waiting for a connection included: curl's total time
  // is 0 for a transfer that timed out before it began.
  absl::Duration elapsed = loop_->Now() - t->started;
  result.latency_ms = absl::ToDoubleMilliseconds(elapsed);
  result.started = t->started_wall;
  result.timings = ReadTimings(t->easy, elapsed);
  result.outcome.http_status = static_cast<int>(status);
  result.outcome.retry_after = absl::Seconds(retry_after_s);

  if (code == CURLE_WRITE_ERROR && result.truncated) code = CURLE_OK;
  if (code == CURLE_OK) {
    result.outcome.error = (status >= 200 && status < 300)
                               ? v1::ERROR_NONE
                               : v1::ERROR_HTTP_STATUS;
    if (result.outcome.error != v1::ERROR_NONE) {
      result.error_message = absl::StrCat("HTTP ", status);
    }
  } else if (!t->blocked_message.empty()) {
    result.outcome.error = v1::ERROR_BLOCKED;
    result.error_message = t->blocked_message;
  } else if (code == CURLE_TOO_MANY_REDIRECTS) {
    result.outcome.error = v1::ERROR_HTTP_STATUS;
    result.error_message = "more than 5 redirects";
  } else if (std::string protocol =
                 ProtocolError(code, t->error, t->in_headers);
             !protocol.empty()) {
    result.outcome.error = v1::ERROR_PROTOCOL;
    result.error_message = std::move(protocol);
  } else {
    result.outcome.error = ClassifyCurlError(code);
    result.error_message = curl_easy_strerror(code);
    if (code == CURLE_UNSUPPORTED_PROTOCOL) {
      result.error_message =
          "redirect to a scheme other than http or https refused";
    }
  }

  curl_multi_remove_handle(multi_, t->easy);
  auto it = transfers_.find(t->id);
  Done done = std::move(it->second->done);
  AttemptResult out = std::move(it->second->result);
  transfers_.erase(it);
  done(std::move(out));
}

}  // namespace fetchfleet::worker
