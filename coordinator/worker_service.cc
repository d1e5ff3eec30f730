#include "coordinator/worker_service.h"

#include <deque>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "coordinator/rpc_guard.h"
#include "coordinator/worker_input.h"

namespace fetchfleet::coordinator {
namespace {

class WorkerStreamReactor final
    : public grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>,
      public WorkerChannel {
 public:
  // `identity` is who the worker proved to be (its certificate's or token's
  // name), empty on an open coordinator.
  WorkerStreamReactor(EventLoop* loop, Scheduler* scheduler, std::string peer,
                      std::string identity)
      : loop_(loop),
        scheduler_(scheduler),
        peer_(std::move(peer)),
        identity_(std::move(identity)) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      loop_->Post([this] {
        scheduler_->RemoveWorker(worker_id_, "stream closed by the worker");
        Close(absl::OkStatus());
      });
      return;
    }
    loop_->Post([this, message = std::move(in_)] {
      if (finishing_) return;
      if (worker_id_ == 0) {
        // A name is for people and logs: printable and short, else the peer.
        // An authenticated worker is named by what it proved, so it cannot
        // pass as another; the name it claims only tells replicas that share
        // one certificate apart.
        std::string name = SaneWorkerName(message.name());
        if (!identity_.empty()) {
          name = name.empty() || name == identity_
                     ? identity_
                     : absl::StrCat(identity_, "/", name);
        }
        if (name.empty()) name = peer_;
        worker_id_ = scheduler_->AddWorker(this, std::move(name), peer_);
      }
      scheduler_->OnWorkerMessage(worker_id_, message);
      if (!finishing_) StartRead(&in_);
    });
  }

  // Loop thread.
  void Send(v1::CoordinatorMessage message) override {
    if (finishing_) return;
    queue_.push_back(std::move(message));
    PumpWrites();
  }

  // Loop thread.
  void Close(const absl::Status& status) override {
    if (finishing_) return;
    finishing_ = true;
    finish_status_ = ToGrpcStatus(status);
    if (!writing_) Finish(finish_status_);
  }

  void OnWriteDone(bool ok) override {
    loop_->Post([this, ok] {
      writing_ = false;
      if (finishing_) {
        Finish(finish_status_);
        return;
      }
      if (!ok) {
        scheduler_->RemoveWorker(worker_id_, "write to the worker failed");
        Close(absl::UnavailableError("write failed"));
        return;
      }
      PumpWrites();
    });
  }

  void OnCancel() override {
    loop_->Post([this] {
      scheduler_->RemoveWorker(worker_id_, "stream cancelled");
      Close(absl::CancelledError("cancelled"));
    });
  }

  void OnDone() override {
    loop_->Post([this] {
      scheduler_->RemoveWorker(worker_id_, "stream done");
      delete this;
    });
  }

 private:
  void PumpWrites() {
    if (writing_ || finishing_ || queue_.empty()) return;
    out_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(&out_);
  }

  EventLoop* const loop_;
  Scheduler* const scheduler_;
  const std::string peer_;
  const std::string identity_;
  v1::WorkerMessage in_;
  v1::CoordinatorMessage out_;
  // Loop side.
  uint64_t worker_id_ = 0;
  std::deque<v1::CoordinatorMessage> queue_;
  bool writing_ = false;
  bool finishing_ = false;
  grpc::Status finish_status_;
};

// RejectBadKey finishes `reactor` with INVALID_ARGUMENT when `key` is not a
// valid rate key.
bool RejectBadKey(const std::string& key, grpc::ServerUnaryReactor* reactor) {
  absl::Status ok = CheckRateKey(key);
  if (ok.ok()) return false;
  reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                               std::string(ok.message())));
  return true;
}

}  // namespace

grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>*
WorkerServiceImpl::Connect(grpc::CallbackServerContext* context) {
  absl::StatusOr<Principal> who = Admit(auth_, *context, Rpc::kConnect);
  if (!who.ok()) {
    return new RefusedBidi<v1::WorkerMessage, v1::CoordinatorMessage>(
        ToGrpcStatus(who.status()));
  }
  if (who->via != "open")
    FF_LOG(INFO) << LogField(kLogWorker, who->name)
                 << LogField("peer", context->peer()) << "worker " << who->name
                 << " (" << who->via << ") connected from " << context->peer();
  return new WorkerStreamReactor(loop_, scheduler_, context->peer(),
                                 who->via == "open" ? "" : who->name);
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListWorkers(
    grpc::CallbackServerContext* context,
    const v1::ListWorkersRequest* /*request*/,
    v1::ListWorkersResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!AdmitUnary(auth_, context, Rpc::kListWorkers, reactor)) return reactor;
  loop_->Post([this, reactor, response] {
    for (v1::WorkerInfo& info : scheduler_->ListWorkers()) {
      *response->add_workers() = std::move(info);
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListLimits(
    grpc::CallbackServerContext* context,
    const v1::ListLimitsRequest* /*request*/, v1::LimitTable* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!AdmitUnary(auth_, context, Rpc::kListLimits, reactor)) return reactor;
  loop_->Post([this, reactor, response] {
    *response = scheduler_->ListLimits();
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::SetLimit(
    grpc::CallbackServerContext* context, const v1::SetLimitRequest* request,
    v1::KeyLimit* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!AdmitUnary(auth_, context, Rpc::kSetLimit, reactor)) return reactor;
  if (RejectBadKey(request->key(), reactor)) return reactor;
  // Burst 0 is the proto's default: 1.
  RateLimit limit{request->per_second(),
                  request->burst() == 0 ? 1 : request->burst()};
  if (absl::Status valid = CheckRateLimit(limit); !valid.ok()) {
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  std::string key = request->key();
  loop_->Post([this, reactor, response, key, limit] {
    limits_->Set(key, limit, [reactor, response, key, limit](absl::Status s) {
      response->set_key(key);
      response->set_per_second(limit.per_second);
      response->set_burst(limit.burst);
      reactor->Finish(ToGrpcStatus(s));
    });
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::DeleteLimit(
    grpc::CallbackServerContext* context, const v1::DeleteLimitRequest* request,
    v1::KeyLimit* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!AdmitUnary(auth_, context, Rpc::kDeleteLimit, reactor)) return reactor;
  std::string key = request->key();
  loop_->Post([this, reactor, response, key] {
    limits_->Delete(key, [reactor, response, key](absl::Status s) {
      response->set_key(key);
      reactor->Finish(ToGrpcStatus(s));
    });
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListBreakers(
    grpc::CallbackServerContext* context,
    const v1::ListBreakersRequest* /*request*/,
    v1::ListBreakersResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!AdmitUnary(auth_, context, Rpc::kListBreakers, reactor)) return reactor;
  loop_->Post([this, reactor, response] {
    breakers_->List(
        [reactor, response](absl::StatusOr<v1::ListBreakersResponse> listed) {
          if (listed.ok()) *response = std::move(*listed);
          reactor->Finish(ToGrpcStatus(listed.status()));
        });
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::SetBreaker(
    grpc::CallbackServerContext* context, const v1::SetBreakerRequest* request,
    v1::BreakerInfo* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!AdmitUnary(auth_, context, Rpc::kSetBreaker, reactor)) return reactor;
  if (RejectBadKey(request->key(), reactor)) return reactor;
  BreakerConfig config = BreakerConfig::FromProto(request->config());
  if (absl::Status valid = config.Validate(); !valid.ok()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 std::string(valid.message())));
    return reactor;
  }
  std::string key = request->key();
  loop_->Post([this, reactor, response, key, config] {
    breakers_->Set(key, config,
                   [reactor, response, key, config](absl::Status s) {
                     response->set_key(key);
                     response->set_configured(true);
                     *response->mutable_config() = config.ToProto();
                     reactor->Finish(ToGrpcStatus(s));
                   });
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::ResetBreaker(
    grpc::CallbackServerContext* context, const v1::BreakerRef* request,
    v1::BreakerInfo* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!AdmitUnary(auth_, context, Rpc::kResetBreaker, reactor)) return reactor;
  if (RejectBadKey(request->key(), reactor)) return reactor;
  std::string key = request->key();
  loop_->Post([this, reactor, response, key] {
    breakers_->Reset(key, [reactor, response, key](absl::Status s) {
      response->set_key(key);
      response->set_state(v1::BREAKER_CLOSED);
      reactor->Finish(ToGrpcStatus(s));
    });
  });
  return reactor;
}

}  // namespace fetchfleet::coordinator
