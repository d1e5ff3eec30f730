#include "coordinator/job_stream.h"

#include "absl/strings/str_cat.h"

namespace fetchfleet::coordinator {

void JobStream::Attach(Job* job, uint64_t from_seq, bool report_input,
                       bool send_results) {
  job_ = job;
  report_input_ = report_input && job->durable();
  send_results_ = send_results;
  cursor_ = std::max<uint64_t>(from_seq, 1);
  job_->AddListener(this);
  Pump();
}

void JobStream::Detach() {
  if (job_ != nullptr) job_->RemoveListener(this);
}

void JobStream::Pump() {
  if (writing_ || finished_ || job_ == nullptr) return;
  out_.Clear();
  batch_end_ = 0;
  // A durable job is told to clients only as far as it is in the store: its
  // id once its record is, input lines and results once they are.
  if (!sent_id_) {
    if (!job_->record_durable()) return;
    out_.set_job_id(job_->id());
    out_.set_durable(job_->durable());
    sent_id_ = true;
  } else if (report_input_ && job_->durable_lines() > sent_durable_lines_) {
    sent_durable_lines_ = job_->durable_lines();
    out_.set_input_durable(sent_durable_lines_);
  } else if (!sent_input_complete_ && job_->input_close_durable()) {
    *out_.mutable_input_complete() = job_->Status();
    sent_input_complete_ = true;
  } else if (send_results_ && cursor_ <= job_->deliverable_seq()) {
    if (cursor_ < job_->first_held_seq()) {
      FinishOnce(grpc::Status(
          grpc::StatusCode::OUT_OF_RANGE,
          absl::StrCat("results before seq ", job_->first_held_seq(),
                       " of job ", job_->id(),
                       " are no longer held; watch --from ",
                       job_->first_held_seq(), " or later")));
      return;
    }
    v1::ResultBatch* batch = out_.mutable_results();
    size_t bytes = 0;
    while (cursor_ <= job_->deliverable_seq() &&
           batch->results_size() < kMaxBatch && bytes < kMaxBatchBytes) {
      const v1::FetchResult& result = job_->ResultAt(cursor_++);
      bytes += result.body().size() + 64;
      *batch->add_results() = result;
    }
    batch_end_ = cursor_ - 1;
  } else if (job_->end_durable() &&
             (!send_results_ || cursor_ >= job_->next_seq()) &&
             job_->deliverable_seq() + 1 == job_->next_seq()) {
    *out_.mutable_finished() = job_->Status();
    final_written_ = true;
  } else {
    return;
  }
  writing_ = true;
  write_(&out_);
}

void JobStream::OnWriteDone(bool ok) {
  writing_ = false;
  if (!ok) {
    FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
    return;
  }
  if (cancelled_) {
    // The reason given to Cancel while this write was out.
    FinishOnce(cancel_status_);
    return;
  }
  if (batch_end_ > 0) scheduler_->ResultsDelivered(job_, batch_end_);
  if (final_written_) {
    FinishOnce(grpc::Status::OK);
    return;
  }
  Pump();
}

void JobStream::Cancel(const grpc::Status& status) {
  cancelled_ = true;
  cancel_status_ = status;
  // Finish must wait for the write in flight; OnWriteDone will finish.
  if (!writing_) FinishOnce(status);
}

void JobStream::FinishOnce(const grpc::Status& status) {
  if (finished_) return;
  finished_ = true;
  // Still a listener until the reactor's OnDone calls Detach: that keeps the
  // job alive.
  finish_(status);
}

}  // namespace fetchfleet::coordinator
