#include "common/metrics_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "prometheus/text_serializer.h"

namespace fetchfleet {
namespace {

void Reply(mg_connection* connection, int code, absl::string_view reason,
           absl::string_view content_type, absl::string_view body) {
  std::string head = absl::StrCat(
      "HTTP/1.1 ", code, " ", reason, "\r\nContent-Type: ", content_type,
      "\r\nContent-Length: ", body.size(),
      "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n");
  mg_write(connection, head.data(), head.size());
  mg_write(connection, body.data(), body.size());
}

// CivetPorts turns HOST:PORT into civetweb's listening_ports syntax, which is
// the same but for a port it must not be empty and an IPv6 host in brackets
// ("[::1]:9090", which civetweb wants as "[::1]:9090" too). An empty host
// ("":9090) means every interface.
absl::StatusOr<std::string> CivetPorts(const std::string& listen) {
  size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(absl::string_view(listen).substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics-listen ", listen, ": want HOST:PORT (e.g. 0.0.0.0:9090)"));
  }
  std::string host = listen.substr(0, colon);
  if (host.empty() || host == "0.0.0.0" || host == "*") {
    return absl::StrCat(port);
  }
  // civetweb binds addresses, not names: "localhost" is the one name with an
  // answer everywhere; any other is refused here rather than by a bind error.
  if (host == "localhost") return absl::StrCat("127.0.0.1:", port);
  if (host.find(':') != std::string::npos && host.front() != '[') {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics-listen ", listen, ": put an IPv6 host in brackets"));
  }
  std::string address = host;
  int family = AF_INET;
  if (host.front() == '[') {
    if (host.back() != ']') {
      return absl::InvalidArgumentError(
          absl::StrCat("--metrics-listen ", listen, ": unclosed '['"));
    }
    address = host.substr(1, host.size() - 2);
    family = AF_INET6;
  }
  unsigned char parsed[sizeof(in6_addr)];
  if (inet_pton(family, address.c_str(), parsed) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-listen ", listen,
                     ": the host must be an IP address (e.g. 0.0.0.0:9090, "
                     "127.0.0.1:9090, [::]:9090) or localhost"));
  }
  return absl::StrCat(host, ":", port);
}

}  // namespace

MetricsServer::MetricsServer(
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables,
    ReadinessCheck ready)
    : collectables_(std::move(collectables)), ready_(std::move(ready)) {}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& listen,
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables,
    ReadinessCheck ready) {
  absl::StatusOr<std::string> ports = CivetPorts(listen);
  if (!ports.ok()) return ports.status();
  std::unique_ptr<MetricsServer> self(
      new MetricsServer(std::move(collectables), std::move(ready)));
  // Four threads: probes are answered from atomics at once, a scrape may wait
  // up to 2 s for the coordinator's loop, so a slow scrape or two never keep
  // the kubelet's /healthz waiting. Requests are small and answered whole; a
  // client that sends nothing is cut off after the timeout.
  const char* options[] = {"listening_ports",
                           ports->c_str(),
                           "num_threads",
                           "4",
                           "request_timeout_ms",
                           "10000",
                           "enable_keep_alive",
                           "no",
                           nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof(callbacks));
  // civetweb prints its own errors to stderr through log_message; returning 1
  // keeps them out (the Start error below says what failed).
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };
  // Every request is answered by begin_request, which is in place before the
  // first connection is accepted (a handler set after mg_start is not).
  callbacks.begin_request = [](mg_connection* connection) {
    return HandleRequest(connection,
                         mg_get_request_info(connection)->user_data);
  };
  self->context_ = mg_start(&callbacks, self.get(), options);
  if (self->context_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("--metrics-listen ", listen,
                     ": cannot listen (in use, or a bad "
                     "address?)"));
  }
  mg_server_port bound[4];
  if (mg_get_server_ports(self->context_, 4, bound) >= 1)
    self->port_ = bound[0].port;
  return self;
}

MetricsServer::~MetricsServer() {
  if (context_ != nullptr) mg_stop(context_);
}

std::string MetricsServer::RenderMetrics() const {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& collectable : collectables_) {
    std::vector<prometheus::MetricFamily> some = collectable->Collect();
    families.insert(families.end(), std::make_move_iterator(some.begin()),
                    std::make_move_iterator(some.end()));
  }
  return prometheus::TextSerializer().Serialize(families);
}

int MetricsServer::HandleRequest(mg_connection* connection, void* self_ptr) {
  auto* self = static_cast<MetricsServer*>(self_ptr);
  const mg_request_info* info = mg_get_request_info(connection);
  absl::string_view method = info->request_method;
  absl::string_view path = info->local_uri != nullptr ? info->local_uri : "";
  if (method != "GET" && method != "HEAD") {
    Reply(connection, 405, "Method Not Allowed", "text/plain",
          "only GET and HEAD\n");
    return 405;
  }
  if (path == "/metrics") {
    Reply(connection, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
          self->RenderMetrics());
    return 200;
  }
  if (path == "/healthz") {
    Reply(connection, 200, "OK", "text/plain", "ok\n");
    return 200;
  }
  if (path == "/readyz") {
    Readiness readiness = self->ready_ ? self->ready_() : Readiness{true, ""};
    if (readiness.ready) {
      Reply(connection, 200, "OK", "text/plain",
            absl::StrCat("ready", readiness.reason.empty() ? "" : ": ",
                         readiness.reason, "\n"));
      return 200;
    }
    Reply(connection, 503, "Service Unavailable", "text/plain",
          absl::StrCat("not ready: ", readiness.reason, "\n"));
    return 503;
  }
  Reply(connection, 404, "Not Found", "text/plain",
        "not found: try /metrics, /healthz or /readyz\n");
  return 404;
}

}  // namespace fetchfleet
