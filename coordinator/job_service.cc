#include "coordinator/job_service.h"

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/request_parser.h"
#include "coordinator/job_stream.h"
#include "coordinator/rpc_guard.h"

namespace fetchfleet::coordinator {
namespace {

// SubmitReactor: input lines in (paced by the scheduler), the job's events out.
class SubmitReactor final
    : public grpc::ServerBidiReactor<v1::SubmitRequest, v1::JobEvent>,
      public InputStream {
 public:
  SubmitReactor(EventLoop* loop, Scheduler* scheduler, std::string owner)
      : loop_(loop),
        scheduler_(scheduler),
        owner_(std::move(owner)),
        stream_(
            scheduler, [this](const v1::JobEvent* event) { StartWrite(event); },
            [this](const grpc::Status& status) { Finish(status); }) {
    StartRead(&in_);
  }

  // gRPC thread. Lines are parsed here, off the loop; the loop only queues
  // them.
  void OnReadDone(bool ok) override {
    if (!ok) {
      loop_->Post([this] { CloseInput(); });
      return;
    }
    if (!got_first_) {
      got_first_ = true;
      options_ = in_.options();
      if (absl::Status valid = ValidateJobOptions(options_); !valid.ok()) {
        Reject(valid);
        return;
      }
    }
    std::vector<ParsedLine> parsed;
    parsed.reserve(in_.lines_size());
    for (const std::string& line : in_.lines()) {
      ParsedLine p =
          ParseRequestLine(line, ++line_number_, next_index_, options_);
      if (p.kind == ParsedLine::Kind::kSkip) continue;
      ++next_index_;
      parsed.push_back(std::move(p));
    }
    loop_->Post([this, parsed = std::move(parsed)]() mutable {
      if (rejected_) return;
      if (stream_.job() == nullptr) {
        // The owner's job limit is checked before the job exists.
        if (absl::Status room = scheduler_->quota().CheckNewJob(
                owner_, scheduler_->RunningJobsOf(owner_));
            !room.ok()) {
          rejected_ = true;
          stream_.Cancel(ToGrpcStatus(room));
          return;
        }
      }
      EnsureJob();
      if (absl::Status charged = scheduler_->quota().ChargeRequests(
              owner_, parsed.size(), loop_->Now());
          !charged.ok()) {
        // Over the hourly limit: the job ends here, cancelled, and the
        // client is told why.
        (void)scheduler_->CancelJob(stream_.job()->id());
        CloseInput();  // no more input will come: the job is over
        rejected_ = true;
        stream_.Cancel(ToGrpcStatus(charged));
        return;
      }
      scheduler_->AddInput(stream_.job(), std::move(parsed), this);
    });
  }

  // Loop thread: the scheduler wants more input.
  void ReadMoreInput() override {
    if (!stream_.finished()) StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    loop_->Post([this, ok] { stream_.OnWriteDone(ok); });
  }

  void OnCancel() override {
    loop_->Post([this] {
      stream_.Cancel(
          grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled"));
    });
  }

  void OnDone() override {
    loop_->Post([this] {
      // A client that went away mid-upload: its job keeps the lines it sent.
      CloseInput();
      if (stream_.job() != nullptr)
        scheduler_->DetachInput(stream_.job(), this);
      stream_.Detach();
      delete this;
    });
  }

 private:
  // Reject ends the stream before any job exists; nothing more is read.
  void Reject(const absl::Status& why) {
    loop_->Post([this, why] {
      rejected_ = true;
      stream_.Cancel(ToGrpcStatus(why));
    });
  }

  void EnsureJob() {
    if (stream_.job() == nullptr)
      stream_.Attach(scheduler_->CreateJob(options_, owner_), 1);
  }

  void CloseInput() {
    if (input_closed_ || rejected_) return;
    input_closed_ = true;
    EnsureJob();
    scheduler_->CloseInput(stream_.job());
  }

  EventLoop* const loop_;
  Scheduler* const scheduler_;
  const std::string owner_;
  JobStream stream_;
  v1::SubmitRequest in_;
  // Read side (one read outstanding at a time, so no lock).
  bool got_first_ = false;
  v1::JobOptions options_;
  uint64_t line_number_ = 0;
  uint64_t next_index_ = 0;
  // Loop side.
  bool input_closed_ = false;
  bool rejected_ = false;  // refused: no (more) input is taken
};

class WatchReactor final : public grpc::ServerWriteReactor<v1::JobEvent> {
 public:
  WatchReactor(EventLoop* loop, Scheduler* scheduler, Principal who,
               v1::WatchRequest request)
      : loop_(loop),
        stream_(
            scheduler, [this](const v1::JobEvent* event) { StartWrite(event); },
            [this](const grpc::Status& status) { Finish(status); }) {
    loop_->Post(
        [this, scheduler, who = std::move(who), request = std::move(request)] {
          absl::StatusOr<Job*> job =
              FindJobFor(scheduler, who, Rpc::kWatch, request.job_id());
          if (!job.ok()) {
            stream_.Cancel(ToGrpcStatus(job.status()));
            return;
          }
          stream_.Attach(*job, request.from_seq());
        });
  }

  void OnWriteDone(bool ok) override {
    loop_->Post([this, ok] { stream_.OnWriteDone(ok); });
  }
  void OnCancel() override {
    loop_->Post([this] {
      stream_.Cancel(
          grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled"));
    });
  }
  void OnDone() override {
    loop_->Post([this] {
      stream_.Detach();
      delete this;
    });
  }

 private:
  EventLoop* const loop_;
  JobStream stream_;
};

}  // namespace

absl::StatusOr<Job*> FindJobFor(Scheduler* scheduler, const Principal& who,
                                Rpc rpc, absl::string_view job_id) {
  Job* job = scheduler->FindJob(job_id);
  if (job == nullptr || job->interactive())
    return absl::NotFoundError(absl::StrCat("no job ", job_id));
  if (!MayUseJob(who, rpc, job->owner())) {
    return absl::PermissionDeniedError(absl::StrCat(
        RpcName(rpc), ": job ", job_id, " belongs to another user; ", who.name,
        " (", who.via, ") holds role(s) ", RolesToString(who.roles),
        rpc == Rpc::kCancelJob ? " (cancelling it needs admin)"
                               : " (seeing it needs read or admin)"));
  }
  return job;
}

grpc::ServerBidiReactor<v1::SubmitRequest, v1::JobEvent>*
JobServiceImpl::Submit(grpc::CallbackServerContext* context) {
  absl::StatusOr<Principal> who = Admit(auth_, *context, Rpc::kSubmit);
  if (!who.ok()) {
    return new RefusedBidi<v1::SubmitRequest, v1::JobEvent>(
        ToGrpcStatus(who.status()));
  }
  return new SubmitReactor(loop_, scheduler_, who->name);
}

grpc::ServerWriteReactor<v1::JobEvent>* JobServiceImpl::Watch(
    grpc::CallbackServerContext* context, const v1::WatchRequest* request) {
  absl::StatusOr<Principal> who = Admit(auth_, *context, Rpc::kWatch);
  if (!who.ok()) {
    return new RefusedWrite<v1::JobEvent>(ToGrpcStatus(who.status()));
  }
  return new WatchReactor(loop_, scheduler_, *std::move(who), *request);
}

grpc::ServerUnaryReactor* JobServiceImpl::GetJob(
    grpc::CallbackServerContext* context, const v1::JobRef* request,
    v1::JobStatus* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::optional<Principal> who =
      AdmitUnary(auth_, context, Rpc::kGetJob, reactor);
  if (!who) return reactor;
  loop_->Post([this, reactor, request, response, who = *std::move(who)] {
    absl::StatusOr<Job*> job =
        FindJobFor(scheduler_, who, Rpc::kGetJob, request->job_id());
    if (!job.ok()) {
      reactor->Finish(ToGrpcStatus(job.status()));
      return;
    }
    *response = (*job)->Status();
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* JobServiceImpl::ListJobs(
    grpc::CallbackServerContext* context,
    const v1::ListJobsRequest* /*request*/, v1::ListJobsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::optional<Principal> who =
      AdmitUnary(auth_, context, Rpc::kListJobs, reactor);
  if (!who) return reactor;
  loop_->Post([this, reactor, response, who = *std::move(who)] {
    bool all = SeesAllJobs(who);
    for (v1::JobStatus& status : scheduler_->ListJobs()) {
      if (all || status.owner() == who.name)
        *response->add_jobs() = std::move(status);
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* JobServiceImpl::CancelJob(
    grpc::CallbackServerContext* context, const v1::JobRef* request,
    v1::JobStatus* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::optional<Principal> who =
      AdmitUnary(auth_, context, Rpc::kCancelJob, reactor);
  if (!who) return reactor;
  loop_->Post([this, reactor, request, response, who = *std::move(who)] {
    absl::StatusOr<Job*> job =
        FindJobFor(scheduler_, who, Rpc::kCancelJob, request->job_id());
    if (!job.ok()) {
      reactor->Finish(ToGrpcStatus(job.status()));
      return;
    }
    if ((*job)->owner() != who.name)
      FF_LOG(INFO) << LogField(kLogJob, request->job_id())
                   << LogField("owner", (*job)->owner())
                   << LogField("by", who.name) << "job " << request->job_id()
                   << " of " << (*job)->owner() << " cancelled by " << who.name;
    absl::StatusOr<v1::JobStatus> status =
        scheduler_->CancelJob(request->job_id());
    if (!status.ok()) {
      reactor->Finish(ToGrpcStatus(status.status()));
      return;
    }
    *response = *std::move(status);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

}  // namespace fetchfleet::coordinator
