#include "fetchctl/embedded_fleet.h"

namespace fetchfleet::fetchctl {

EmbeddedFleet::EmbeddedFleet(EgressPolicy policy, worker::WorkerOptions options)
    : policy_(std::move(policy)), worker_options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<EmbeddedFleet>> EmbeddedFleet::Start(
    EgressPolicy policy, worker::WorkerOptions options) {
  std::unique_ptr<EmbeddedFleet> self(
      new EmbeddedFleet(std::move(policy), std::move(options)));
  coordinator::CoordinatorOptions coordinator_options;
  coordinator_options.listen = "";  // in-process only
  auto coordinator = coordinator::CoordinatorServer::Start(coordinator_options);
  if (!coordinator.ok()) return coordinator.status();
  self->coordinator_ = *std::move(coordinator);
  self->channel_ = self->coordinator_->InProcessChannel();
  self->worker_ =
      std::make_unique<worker::Worker>(&self->worker_loop_, self->channel_,
                                       &self->policy_, self->worker_options_);
  self->worker_loop_.Post([w = self->worker_.get()] { w->Start(); });
  self->worker_thread_ =
      std::thread([loop = &self->worker_loop_] { loop->Run(); });
  return self;
}

EmbeddedFleet::~EmbeddedFleet() {
  worker_loop_.Post(
      [this] { worker_->Drain([this] { worker_loop_.Stop(); }); });
  worker_thread_.join();
  coordinator_->Shutdown(absl::Seconds(1));
}

}  // namespace fetchfleet::fetchctl
