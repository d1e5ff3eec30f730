#include "coordinator/coordinator_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "common/trace_metrics.h"
#include "common/wire_limits.h"

namespace fetchfleet::coordinator {

CoordinatorServer::CoordinatorServer(CoordinatorOptions options,
                                     std::unique_ptr<Authenticator> auth)
    : options_(std::move(options)),
      auth_(std::move(auth)),
      tls_watch_(options_.tls),
      scheduler_(Clock::Real(), options_.scheduler),
      metrics_(&loop_, &scheduler_),
      limits_(&loop_, &scheduler_, options_.redis),
      breakers_(&loop_, &scheduler_, options_.redis),
      job_service_(&loop_, &scheduler_, auth_.get()),
      worker_service_(&loop_, &scheduler_, auth_.get()),
      admin_service_(&loop_, &scheduler_, &limits_, &breakers_, auth_.get()),
      gateway_service_(&loop_, &scheduler_, auth_.get(), &metrics_) {}

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    CoordinatorOptions options) {
  if (absl::Status exposed = CheckExposure(options.listen, options.tls,
                                           options.auth, options.insecure);
      !exposed.ok()) {
    return exposed;
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options.tls, options.auth);
  if (!credentials.ok()) return credentials.status();
  absl::StatusOr<std::unique_ptr<Authenticator>> auth =
      Authenticator::Create(options.auth);
  if (!auth.ok()) return auth.status();
  std::unique_ptr<CoordinatorServer> self(
      new CoordinatorServer(std::move(options), *std::move(auth)));
  // Jobs are restored before the port opens: a client that reconnects finds
  // its job.
  if (absl::Status opened = self->OpenStore(); !opened.ok()) return opened;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (!self->options_.listen.empty()) {
    builder.AddListeningPort(self->options_.listen, *credentials, &self->port_);
  }
  builder.SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
  builder.SetMaxSendMessageSize(kMaxReceiveMessageBytes);
  builder.RegisterService(&self->job_service_);
  builder.RegisterService(&self->worker_service_);
  builder.RegisterService(&self->admin_service_);
  builder.RegisterService(&self->gateway_service_);
  if (!self->options_.metrics_listen.empty()) {
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(self->metrics_.RpcInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  self->server_ = builder.BuildAndStart();
  if (self->server_ == nullptr ||
      (!self->options_.listen.empty() && self->port_ == 0)) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ",
                                               self->options_.listen,
                                               " (in use, or a bad address?)"));
  }
  self->loop_thread_ = std::thread([loop = &self->loop_] { loop->Run(); });
  self->serving_ = true;
  if (!self->options_.metrics_listen.empty()) {
    CoordinatorServer* raw = self.get();
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables =
        self->metrics_.collectables();
    if (const OtlpExporter* exporter =
            self->options_.scheduler.tracing.exporter;
        exporter != nullptr) {
      collectables.push_back(TraceExporterMetrics(exporter));
    }
    auto metrics_server =
        MetricsServer::Start(self->options_.metrics_listen, collectables,
                             [raw] { return raw->Ready(); });
    if (!metrics_server.ok()) return metrics_server.status();
    self->metrics_server_ = *std::move(metrics_server);
  }
  self->loop_.Post([raw = self.get()] {
    raw->ScheduleSweep();
    raw->ScheduleTlsCheck();
    raw->limits_.Start();
    raw->breakers_.Start();
    raw->PublishReadiness();
    raw->scheduler_.LoadSpooled();
  });
  return self;
}

absl::Status CoordinatorServer::OpenStore() {
  if (options_.data_dir.empty()) return absl::OkStatus();
  std::error_code error;
  std::filesystem::create_directories(options_.data_dir, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("--data-dir ", options_.data_dir, ": ", error.message()));
  }
  JobStoreOptions store_options;
  store_options.path =
      (std::filesystem::path(options_.data_dir) / "jobs.sqlite").string();
  store_options.sync_full = options_.store_sync_full;
  store_options.max_bytes = options_.store_max_bytes;
  absl::Time started = absl::Now();
  absl::StatusOr<std::unique_ptr<JobStore>> store =
      JobStore::Open(store_options, &loop_);
  if (!store.ok()) return store.status();
  store_ = *std::move(store);
  absl::StatusOr<std::vector<RecoveredJob>> jobs = store_->Recover();
  if (!jobs.ok()) return jobs.status();
  durable_ = std::make_unique<DurableJobs>(
      store_.get(), &loop_, options_.store_commit_interval,
      [this](const std::string& id) { return scheduler_.FindJob(id); },
      [this](Job* job) { scheduler_.OnJobDurable(job); });
  scheduler_.AttachStore(durable_.get());
  scheduler_.RestoreJobs(*jobs);
  FF_LOG(INFO) << "job store " << store_options.path << ": " << jobs->size()
               << " job(s) restored in "
               << absl::FormatDuration(
                      absl::Trunc(absl::Now() - started, absl::Milliseconds(1)))
               << " (" << store_->size_bytes() / 1024 << " KiB)";
  return absl::OkStatus();
}

CoordinatorServer::~CoordinatorServer() { Shutdown(absl::ZeroDuration()); }

std::shared_ptr<grpc::Channel> CoordinatorServer::InProcessChannel() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
  args.SetMaxSendMessageSize(kMaxReceiveMessageBytes);
  return server_->InProcessChannel(args);
}

void CoordinatorServer::ScheduleSweep() {
  loop_.RunAfter(options_.scheduler.heartbeat_interval, [this] {
    scheduler_.Sweep();
    ScheduleSweep();
  });
}

void CoordinatorServer::ScheduleTlsCheck() {
  if (!options_.tls.enabled()) return;
  // Two small files read on the loop once per refresh interval.
  loop_.RunAfter(options_.tls.refresh, [this] {
    tls_watch_.Check();
    ScheduleTlsCheck();
  });
}

namespace {
int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void CoordinatorServer::PublishReadiness() {
  redis_connected_ = !options_.redis || limits_.redis_connected();
  loop_heartbeat_ns_ = SteadyNanos();
  loop_.RunAfter(absl::Milliseconds(500), [this] { PublishReadiness(); });
}

Readiness CoordinatorServer::Ready() const {
  if (!serving_) return {false, "shutting down"};
  int64_t heartbeat = loop_heartbeat_ns_;
  if (heartbeat == 0) return {false, "starting"};
  absl::Duration silent = absl::Nanoseconds(SteadyNanos() - heartbeat);
  if (silent > absl::Seconds(2)) {
    return {false, absl::StrCat("the scheduler's loop has not run for ",
                                absl::FormatDuration(absl::Trunc(
                                    silent, absl::Milliseconds(100))))};
  }
  if (!redis_connected_) {
    return {false, "Redis " + options_.redis->ToString() + " is not connected"};
  }
  if (store_ != nullptr) {
    if (std::string error = store_->error(); !error.empty())
      return {false, error};
  }
  return {true, ""};
}

void CoordinatorServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  serving_ = false;  // /readyz says so through the grace period
  // Workers without leases are let go at once (the rest as their leases end),
  // so an idle coordinator does not wait out the grace for their streams.
  // A server that failed to start may have no gRPC server or loop yet.
  loop_.Post([this] { scheduler_.BeginShutdown(); });
  // Reactors finish through the loop, so it keeps running until the server is
  // down.
  if (server_ != nullptr) {
    server_->Shutdown(
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(absl::ToInt64Milliseconds(grace)));
  }
  // Scrapes and probes read the loop: they end before it does.
  metrics_server_.reset();
  loop_.Stop();
  if (loop_thread_.joinable()) loop_thread_.join();
}

}  // namespace fetchfleet::coordinator
