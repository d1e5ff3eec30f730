#include "coordinator/gateway_service.h"

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "coordinator/aggregate.h"
#include "coordinator/rpc_guard.h"

namespace fetchfleet::coordinator {
namespace {

// AggregateCall: one Aggregate call on the loop. It owns itself and deletes
// itself once it has answered.
class AggregateCall final : public JobListener {
 public:
  AggregateCall(EventLoop* loop, Scheduler* scheduler,
                CoordinatorMetrics* metrics, AggregatePlan plan,
                std::string owner, grpc::ServerUnaryReactor* reactor,
                v1::AggregateResponse* response)
      : loop_(loop),
        scheduler_(scheduler),
        metrics_(metrics),
        owner_(std::move(owner)),
        plan_(std::move(plan)),
        reactor_(reactor),
        response_(response),
        started_(loop->Now()),
        outcomes_(plan_.parts.size()) {}

  void Start() {
    std::vector<v1::FetchRequest> requests;
    for (const AggregatePart& part : plan_.parts)
      requests.push_back(part.request);
    v1::JobOptions options;
    options.set_on_open(v1::ON_OPEN_FAIL);  // a part at an open breaker falls
                                            // back at once
    deadline_timer_ = loop_->RunAfter(plan_.deadline, [this] {
      deadline_timer_ = 0;
      Finish();
    });
    job_ = scheduler_->StartInteractive(std::move(requests), options);
    job_->AddListener(this);
    OnJobProgress();
  }

  void OnJobProgress() override {
    if (job_ == nullptr) return;
    absl::Duration at = loop_->Now() - started_;
    for (; next_seq_ < job_->next_seq(); ++next_seq_) {
      const v1::FetchResult& result = job_->ResultAt(next_seq_);
      if (result.index() >= outcomes_.size()) continue;
      PartOutcome& outcome = outcomes_[result.index()];
      if (outcome.result) continue;
      outcome.result = result;
      outcome.at = at;
      ++answered_;
    }
    if (answered_ == outcomes_.size()) Finish();
  }

 private:
  void Finish() {
    if (finished_) return;
    finished_ = true;
    if (deadline_timer_ != 0) loop_->CancelTimer(deadline_timer_);
    Job* job = job_;
    job_ = nullptr;
    if (job != nullptr) {
      job->RemoveListener(this);
      // Parts still out are abandoned at their workers.
      if (!job->ended()) (void)scheduler_->CancelJob(job->id());
      scheduler_->ForgetJob(job);
    }
    absl::Duration elapsed = loop_->Now() - started_;
    for (PartOutcome& outcome : outcomes_) {
      if (!outcome.result) outcome.at = elapsed;
    }
    *response_ = MergeAggregate(plan_, outcomes_, elapsed);
    if (metrics_ != nullptr) {
      int degraded = 0;
      for (const v1::AggregatePartResult& part : response_->parts())
        degraded += part.degraded() ? 1 : 0;
      metrics_->OnAggregate(elapsed, response_->ok(), degraded);
    }
    scheduler_->quota().EndAggregate(owner_);
    reactor_->Finish(grpc::Status::OK);
    delete this;
  }

  EventLoop* const loop_;
  Scheduler* const scheduler_;
  CoordinatorMetrics* const metrics_;
  const std::string owner_;
  const AggregatePlan plan_;
  grpc::ServerUnaryReactor* const reactor_;
  v1::AggregateResponse* const response_;
  const absl::Time started_;
  std::vector<PartOutcome> outcomes_;
  size_t answered_ = 0;
  Job* job_ = nullptr;
  uint64_t next_seq_ = 1;
  EventLoop::TimerId deadline_timer_ = 0;
  bool finished_ = false;
};

}  // namespace

grpc::ServerUnaryReactor* GatewayServiceImpl::Aggregate(
    grpc::CallbackServerContext* context, const v1::AggregateRequest* request,
    v1::AggregateResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::optional<Principal> who =
      AdmitUnary(auth_, context, Rpc::kAggregate, reactor);
  if (!who) return reactor;
  absl::StatusOr<AggregatePlan> plan = ParseAggregate(request->json());
  if (!plan.ok()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 std::string(plan.status().message())));
    return reactor;
  }
  loop_->Post([this, reactor, response, owner = who->name,
               plan = *std::move(plan)]() mutable {
    if (scheduler_->interactive_jobs() >= kMaxConcurrentCalls) {
      reactor->Finish(
          grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                       absl::StrCat("over ", kMaxConcurrentCalls,
                                    " Aggregate calls at once; try again")));
      return;
    }
    if (absl::Status room = scheduler_->quota().StartAggregate(owner);
        !room.ok()) {
      reactor->Finish(ToGrpcStatus(room));
      return;
    }
    (new AggregateCall(loop_, scheduler_, metrics_, std::move(plan),
                       std::move(owner), reactor, response))
        ->Start();
  });
  return reactor;
}

}  // namespace fetchfleet::coordinator
