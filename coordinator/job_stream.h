// JobStream: the part of a Submit or Watch stream that sends a job's events to
// a client: the job id, then batches of results from a cursor in the job's tail
// as they complete, then the final status. One write outstanding at a time; the
// next batch goes when the last is done, so a slow client holds its job's tail
// (and through it, its job) rather than growing memory.
//
// Loop thread only. The owning reactor forwards OnWriteDone and cancellation
// onto the loop.
#pragma once

#include <grpcpp/support/status.h>

#include <functional>

#include "coordinator/scheduler.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet::coordinator {

class JobStream final : public JobListener {
 public:
  using WriteFn = std::function<void(const v1::JobEvent*)>;
  using FinishFn = std::function<void(const grpc::Status&)>;

  JobStream(Scheduler* scheduler, WriteFn write, FinishFn finish)
      : scheduler_(scheduler),
        write_(std::move(write)),
        finish_(std::move(finish)) {}

  // Attach starts streaming `job` from `from_seq` (1 = the beginning).
  // `report_input`: a Submit stream, told how much of its input is durable;
  // `send_results` false: a detached one, which takes none (they wait for a
  // Watch).
  void Attach(Job* job, uint64_t from_seq, bool report_input = false,
              bool send_results = true);
  // Detach stops listening; call before the reactor goes away.
  void Detach();
  void OnWriteDone(bool ok);
  // Cancel finishes the stream (the client went away).
  void Cancel(const grpc::Status& status);

  void OnJobProgress() override { Pump(); }
  bool finished() const { return finished_; }
  Job* job() const { return job_; }

 private:
  void Pump();
  void FinishOnce(const grpc::Status& status);

  static constexpr int kMaxBatch = 512;
  static constexpr size_t kMaxBatchBytes = 1 << 20;

  Scheduler* const scheduler_;
  const WriteFn write_;
  const FinishFn finish_;
  Job* job_ = nullptr;
  uint64_t cursor_ = 1;
  uint64_t batch_end_ = 0;  // last seq of the write in progress
  bool sent_id_ = false;
  bool report_input_ = false;
  bool send_results_ = true;
  uint64_t sent_durable_lines_ = 0;
  bool sent_input_complete_ = false;
  bool writing_ = false;
  bool final_written_ = false;
  bool finished_ = false;
  bool cancelled_ = false;
  grpc::Status cancel_status_;
  v1::JobEvent out_;
};

}  // namespace fetchfleet::coordinator
