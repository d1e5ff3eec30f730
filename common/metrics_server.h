// MetricsServer: a server process's HTTP side for Prometheus and Kubernetes
// (--metrics-listen):
//
//   GET /metrics   every registered collectable, in Prometheus' text format
//   GET /healthz   200 "ok" while the process serves HTTP at all (liveness)
//   GET /readyz    200 "ready" when the readiness check says so, else 503 with
//                  its reason (readiness: the pod gets traffic)
//
// It runs on civetweb's own threads (four), never on a fetch or scheduler
// loop; a scrape costs the hot path nothing but the collectables' reads.
// Plain HTTP without authentication: bind it where only the scraper and the
// kubelet reach it (the pod's address, a NetworkPolicy).
//
// Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"

struct mg_context;
struct mg_connection;

namespace fetchfleet {

struct Readiness {
  bool ready = false;
  std::string reason;  // why not (or a note when ready)
};

class MetricsServer {
 public:
  // Runs on a server thread for each /readyz; must be thread-safe and quick.
  using ReadinessCheck = std::function<Readiness()>;

  // Start listens on `listen` (HOST:PORT, [v6]:PORT; port 0 picks a free
  // one) and serves the collectables, which must outlive the server.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& listen,
      std::vector<std::shared_ptr<prometheus::Collectable>> collectables,
      ReadinessCheck ready);
  ~MetricsServer();  // stops serving; waits for requests being answered
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }

 private:
  MetricsServer(
      std::vector<std::shared_ptr<prometheus::Collectable>> collectables,
      ReadinessCheck ready);
  static int HandleRequest(mg_connection* connection, void* self);
  std::string RenderMetrics() const;

  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  ReadinessCheck ready_;
  mg_context* context_ = nullptr;
  int port_ = 0;
};

}  // namespace fetchfleet
