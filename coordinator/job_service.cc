#include "coordinator/job_service.h"

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/request_parser.h"
#include "coordinator/job_stream.h"

namespace fetchfleet::coordinator {
namespace {

// SubmitReactor: input lines in (paced by the scheduler), the job's events out.
class SubmitReactor final
    : public grpc::ServerBidiReactor<v1::SubmitRequest, v1::JobEvent>,
      public InputStream {
 public:
  SubmitReactor(EventLoop* loop, Scheduler* scheduler)
      : loop_(loop),
        scheduler_(scheduler),
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
        // No job: the stream ends with the reason, and nothing more is read.
        loop_->Post([this, valid] {
          rejected_ = true;
          stream_.Cancel(ToGrpcStatus(valid));
        });
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
      EnsureJob();
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
  void EnsureJob() {
    if (stream_.job() == nullptr)
      stream_.Attach(scheduler_->CreateJob(options_), 1);
  }

  void CloseInput() {
    if (input_closed_ || rejected_) return;
    input_closed_ = true;
    EnsureJob();
    scheduler_->CloseInput(stream_.job());
  }

  EventLoop* const loop_;
  Scheduler* const scheduler_;
  JobStream stream_;
  v1::SubmitRequest in_;
  // Read side (one read outstanding at a time, so no lock).
  bool got_first_ = false;
  v1::JobOptions options_;
  uint64_t line_number_ = 0;
  uint64_t next_index_ = 0;
  // Loop side.
  bool input_closed_ = false;
  bool rejected_ = false;  // bad options: no job was made
};

class WatchReactor final : public grpc::ServerWriteReactor<v1::JobEvent> {
 public:
  WatchReactor(EventLoop* loop, Scheduler* scheduler, v1::WatchRequest request)
      : loop_(loop),
        stream_(
            scheduler, [this](const v1::JobEvent* event) { StartWrite(event); },
            [this](const grpc::Status& status) { Finish(status); }) {
    loop_->Post([this, scheduler, request = std::move(request)] {
      Job* job = scheduler->FindJob(request.job_id());
      if (job == nullptr) {
        stream_.Cancel(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                    absl::StrCat("no job ", request.job_id())));
        return;
      }
      stream_.Attach(job, request.from_seq());
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

grpc::ServerBidiReactor<v1::SubmitRequest, v1::JobEvent>*
JobServiceImpl::Submit(grpc::CallbackServerContext* /*context*/) {
  return new SubmitReactor(loop_, scheduler_);
}

grpc::ServerWriteReactor<v1::JobEvent>* JobServiceImpl::Watch(
    grpc::CallbackServerContext* /*context*/, const v1::WatchRequest* request) {
  return new WatchReactor(loop_, scheduler_, *request);
}

grpc::ServerUnaryReactor* JobServiceImpl::GetJob(
    grpc::CallbackServerContext* context, const v1::JobRef* request,
    v1::JobStatus* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  loop_->Post([this, reactor, request, response] {
    Job* job = scheduler_->FindJob(request->job_id());
    if (job == nullptr) {
      reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                   absl::StrCat("no job ", request->job_id())));
      return;
    }
    *response = job->Status();
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* JobServiceImpl::ListJobs(
    grpc::CallbackServerContext* context,
    const v1::ListJobsRequest* /*request*/, v1::ListJobsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  loop_->Post([this, reactor, response] {
    for (v1::JobStatus& status : scheduler_->ListJobs())
      *response->add_jobs() = std::move(status);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* JobServiceImpl::CancelJob(
    grpc::CallbackServerContext* context, const v1::JobRef* request,
    v1::JobStatus* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  loop_->Post([this, reactor, request, response] {
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
