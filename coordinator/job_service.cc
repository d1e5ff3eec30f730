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
// The first message is handled on the loop (it creates the job, or resumes
// one); later batches are parsed on the gRPC thread and queued on the loop.
class SubmitReactor final
    : public grpc::ServerBidiReactor<v1::SubmitRequest, v1::JobEvent>,
      public InputStream {
 public:
  SubmitReactor(EventLoop* loop, Scheduler* scheduler,
                grpc::CallbackServerContext* context, std::string owner)
      : loop_(loop),
        scheduler_(scheduler),
        context_(context),
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
      // A half-close ends the input; a broken stream (the client died, the
      // network went) leaves a durable job's input open for a resume.
      bool broken = context_->IsCancelled();
      loop_->Post([this, broken] {
        if (!broken) CloseInput();
      });
      return;
    }
    if (!got_first_) {
      got_first_ = true;
      loop_->Post([this, first = std::move(in_)]() mutable { Open(first); });
      return;
    }
    uint64_t raw_lines = 0;
    std::vector<ParsedLine> parsed = Parse(in_, &raw_lines);
    loop_->Post([this, parsed = std::move(parsed), raw_lines]() mutable {
      if (rejected_) return;
      if (input_closed_) {
        ReadMoreInput();  // drained and dropped: the input has ended
        return;
      }
      AddInput(std::move(parsed), raw_lines);
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
      Job* job = stream_.job();
      // A client that went away mid-upload: a job kept only in memory ends
      // with the lines it sent; a durable one waits for the client to resume.
      if (job != nullptr && !job->durable()) CloseInput();
      if (job != nullptr) scheduler_->DetachInput(job, this);
      stream_.Detach();
      delete this;
    });
  }

 private:
  // Parse reads a batch's lines (gRPC thread, or the loop for the first):
  // those a resumed stream sends again are skipped.
  std::vector<ParsedLine> Parse(const v1::SubmitRequest& request,
                                uint64_t* raw_lines) {
    std::vector<ParsedLine> parsed;
    parsed.reserve(request.lines_size());
    for (const std::string& line : request.lines()) {
      if (skip_lines_ > 0) {
        --skip_lines_;
        continue;
      }
      ++*raw_lines;
      ParsedLine p =
          ParseRequestLine(line, ++line_number_, next_index_, options_);
      if (p.kind == ParsedLine::Kind::kSkip) continue;
      ++next_index_;
      parsed.push_back(std::move(p));
    }
    return parsed;
  }

  // Open handles the first message on the loop: a new job, or a resumed one.
  void Open(const v1::SubmitRequest& first) {
    if (!first.resume_job_id().empty()) {
      if (absl::Status resumed = Resume(first); !resumed.ok()) {
        Reject(resumed);
        return;
      }
    } else {
      options_ = first.options();
      if (absl::Status valid = ValidateJobOptions(options_); !valid.ok()) {
        Reject(valid);
        return;
      }
      // The owner's job limit is checked before the job exists.
      if (absl::Status room = scheduler_->quota().CheckNewJob(
              owner_, scheduler_->RunningJobsOf(owner_));
          !room.ok()) {
        Reject(room);
        return;
      }
      if (std::string error = scheduler_->store_error(); !error.empty()) {
        Reject(absl::ResourceExhaustedError(absl::StrCat(
            "no new jobs while the job store cannot write: ", error)));
        return;
      }
      Job* job = scheduler_->CreateJob(options_, owner_);
      scheduler_->TakeInput(job, this);
      // Detached, a durable job keeps its results for `watch`; one in memory
      // has no room to hold them while the rest of its input comes, so its
      // stream takes them as before.
      stream_.Attach(job, 1, /*report_input=*/true,
                     !first.detach() || !job->durable());
    }
    if (input_closed_) {
      // Resumed after the input had ended: only results are left to send;
      // lines still coming are read and dropped.
      ReadMoreInput();
      return;
    }
    uint64_t raw_lines = 0;
    std::vector<ParsedLine> parsed = Parse(first, &raw_lines);
    AddInput(std::move(parsed), raw_lines);
  }

  // Resume takes over the input of the job `first` names.
  absl::Status Resume(const v1::SubmitRequest& first) {
    Job* job = scheduler_->FindJob(first.resume_job_id());
    if (job == nullptr || job->interactive())
      return absl::NotFoundError(
          absl::StrCat("no job ", first.resume_job_id(), " to resume"));
    if (job->owner() != owner_)
      return absl::PermissionDeniedError(
          absl::StrCat("job ", job->id(), " belongs to another user; ", owner_,
                       " cannot resume its input"));
    options_ = job->options();
    if (job->input_closed()) {
      input_closed_ = true;
    } else {
      if (first.resume_from_line() > job->lines_received()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "resume job ", job->id(), " from line ",
            first.resume_from_line() + 1, ": the coordinator holds only ",
            job->lines_received(), " lines of its input"));
      }
      skip_lines_ = job->lines_received() - first.resume_from_line();
      line_number_ = job->lines_received();
      next_index_ = job->next_index();
      scheduler_->TakeInput(job, this);
    }
    FF_LOG(INFO) << LogField(kLogJob, job->id())
                 << LogField("from_line", first.resume_from_line())
                 << LogField("from_seq", first.from_seq()) << "job "
                 << job->id() << ": " << owner_ << " resumed "
                 << (input_closed_ ? "its results"
                                   : absl::StrCat("its input after line ",
                                                  job->lines_received()))
                 << " from seq " << std::max<uint64_t>(first.from_seq(), 1);
    stream_.Attach(job, first.from_seq(), /*report_input=*/true,
                   !first.detach());
    return absl::OkStatus();
  }

  void AddInput(std::vector<ParsedLine> parsed, uint64_t raw_lines) {
    Job* job = stream_.job();
    if (absl::Status charged = scheduler_->quota().ChargeRequests(
            owner_, parsed.size(), loop_->Now());
        !charged.ok()) {
      // Over the hourly limit: the job ends here, cancelled, and the client
      // is told why.
      (void)scheduler_->CancelJob(job->id());
      CloseInput();  // no more input will come: the job is over
      rejected_ = true;
      stream_.Cancel(ToGrpcStatus(charged));
      return;
    }
    scheduler_->AddInput(job, std::move(parsed), raw_lines, this);
  }

  // Reject ends the stream; nothing more is read.
  void Reject(const absl::Status& why) {
    rejected_ = true;
    stream_.Cancel(ToGrpcStatus(why));
  }

  void CloseInput() {
    if (input_closed_ || stream_.job() == nullptr) return;
    input_closed_ = true;
    scheduler_->CloseInput(stream_.job(), this);
  }

  EventLoop* const loop_;
  Scheduler* const scheduler_;
  grpc::CallbackServerContext* const context_;
  const std::string owner_;
  JobStream stream_;
  v1::SubmitRequest in_;
  // Read side (one read outstanding at a time, so no lock; set on the loop
  // by Open before the next read starts).
  bool got_first_ = false;
  v1::JobOptions options_;
  uint64_t line_number_ = 0;
  uint64_t next_index_ = 0;
  uint64_t skip_lines_ = 0;
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
  return new SubmitReactor(loop_, scheduler_, context, who->name);
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
    response->set_store_error(scheduler_->store_error());
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
    // Confirmed once a restart would keep it.
    (*job)->WhenCancelDurable([reactor] { reactor->Finish(grpc::Status::OK); });
  });
  return reactor;
}

}  // namespace fetchfleet::coordinator
