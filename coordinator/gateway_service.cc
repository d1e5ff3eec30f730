#include "coordinator/gateway_service.h"

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/trace_context.h"
#include "coordinator/aggregate.h"
#include "coordinator/job_trace.h"
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
                v1::AggregateResponse* response, JobTrace trace)
      : loop_(loop),
        scheduler_(scheduler),
        metrics_(metrics),
        owner_(std::move(owner)),
        plan_(std::move(plan)),
        reactor_(reactor),
        response_(response),
        started_(loop->Now()),
        outcomes_(plan_.parts.size()),
        trace_(std::move(trace)) {}

  void Start() {
    std::vector<v1::FetchRequest> requests;
    for (const AggregatePart& part : plan_.parts) {
      requests.push_back(part.request);
      if (trace_.active()) {
        // Each part is a span of the call's trace; its attempts are the
        // part's children.
        TraceContext part_context = ChildContext(trace_.context());
        part_spans_.push_back(part_context.span_id);
        if (requests.back().traceparent().empty()) {
          requests.back().set_traceparent(FormatTraceparent(part_context));
          requests.back().set_tracestate(part_context.tracestate);
        }
      }
    }
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
    ExportSpans();
    scheduler_->quota().EndAggregate(owner_);
    reactor_->Finish(grpc::Status::OK);
    delete this;
  }

  // ExportSpans records the call's span and one per part.
  void ExportSpans() {
    if (!trace_.recording()) return;
    absl::Time start = trace_.started();
    otlp::trace::v1::Span call = trace_.NewJobSpan(
        "aggregate", start + absl::Milliseconds(response_->latency_ms()));
    SetAttribute(&call, "fetchfleet.aggregate.parts",
                 static_cast<int64_t>(plan_.parts.size()));
    SetAttribute(&call, "fetchfleet.aggregate.ok", response_->ok());
    SetAttribute(&call, "fetchfleet.job.owner", owner_);
    if (!response_->ok()) SetError(&call, "a required part failed");
    trace_.Export(std::move(call));
    for (size_t i = 0; i < part_spans_.size() &&
                       i < static_cast<size_t>(response_->parts_size());
         ++i) {
      const v1::AggregatePartResult& part = response_->parts(i);
      TraceContext context = trace_.context();
      context.span_id = part_spans_[i];
      otlp::trace::v1::Span span =
          NewSpan("aggregate part", context, trace_.context().span_id, start,
                  start + absl::Milliseconds(part.latency_ms()));
      SetAttribute(&span, "fetchfleet.part.name", part.name());
      SetAttribute(&span, "fetchfleet.part.required", part.required());
      SetAttribute(&span, "fetchfleet.part.ok", part.ok());
      SetAttribute(&span, "fetchfleet.part.degraded", part.degraded());
      if (part.status() > 0) {
        SetAttribute(&span, "http.response.status_code",
                     static_cast<int64_t>(part.status()));
      }
      if (!part.ok()) {
        SetAttribute(&span, "error.type", part.error());
        SetError(&span, part.error_message());
      }
      trace_.Export(std::move(span));
    }
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
  const JobTrace trace_;
  std::vector<uint64_t> part_spans_;  // when traced, one per part
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
  if (!request->traceparent().empty() || !request->tracestate().empty()) {
    absl::StatusOr<TraceContext> parent =
        ParseTraceparent(request->traceparent(), request->tracestate());
    if (!parent.ok()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   std::string(parent.status().message())));
      return reactor;
    }
  }
  loop_->Post([this, reactor, response, owner = who->name,
               plan = *std::move(plan), traceparent = request->traceparent(),
               tracestate = request->tracestate()]() mutable {
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
    JobTrace trace =
        JobTrace::Start(scheduler_->options().tracing, traceparent, tracestate,
                        absl::Now(), /*per_request=*/false);
    (new AggregateCall(loop_, scheduler_, metrics_, std::move(plan),
                       std::move(owner), reactor, response, std::move(trace)))
        ->Start();
  });
  return reactor;
}

}  // namespace fetchfleet::coordinator
