#include "fetchctl/job_client.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "absl/strings/str_format.h"
#include "common/result_json.h"
#include "fetchctl/progress.h"
#include "proto/fetchfleet.grpc.pb.h"

namespace fetchfleet::fetchctl {
namespace {

constexpr size_t kBatchLines = 1000;
constexpr size_t kBatchBytes = 1 << 20;

// EventPrinter turns a job's event stream into JSON Lines, a progress bar and a
// summary.
class EventPrinter {
 public:
  EventPrinter(FILE* out, const OutputOptions& options)
      : out_(out), options_(options), progress_(options.progress) {}

  // Handle consumes one event; false when the caller should stop reading
  // (detach).
  bool Handle(const v1::JobEvent& event) {
    switch (event.kind_case()) {
      case v1::JobEvent::kJobId:
        job_id_ = event.job_id();
        if (!options_.detach) {
          std::fprintf(stderr, "job %s\n", job_id_.c_str());
        }
        return true;
      case v1::JobEvent::kInputComplete:
        progress_.SetTotal(event.input_complete().total());
        if (options_.detach) {
          detached_ = true;
          std::printf("%s\n", job_id_.c_str());
          std::fprintf(
              stderr,
              "job %s: %llu requests accepted; follow with `fetchctl watch "
              "%s`\n",
              job_id_.c_str(),
              static_cast<unsigned long long>(event.input_complete().total()),
              job_id_.c_str());
          return false;
        }
        return true;
      case v1::JobEvent::kResults: {
        std::string text;
        uint64_t failed = 0;
        for (const v1::FetchResult& result : event.results().results()) {
          AppendResultJson(result, &text);
          text.push_back('\n');
          last_seq_ = result.seq();
          if (!result.ok()) ++failed;
        }
        std::fwrite(text.data(), 1, text.size(), out_);
        progress_.Add(event.results().results_size(), failed);
        return true;
      }
      case v1::JobEvent::kFinished:
        finished_ = event.finished();
        got_finished_ = true;
        return true;
      default:
        return true;
    }
  }

  // Finish prints the summary and returns the exit code.
  int Finish(const grpc::Status& status) {
    std::fflush(out_);
    progress_.Clear();
    if (got_finished_) {
      const v1::JobStatus& s = finished_;
      double rate = s.elapsed_s() > 0 ? s.done() / s.elapsed_s() : 0;
      // Waiting for rate limits is said only when there was some.
      std::string waited =
          s.rate_wait_s() >= 0.05
              ? absl::StrFormat(
                    "; %.1f s of request time waiting for rate limits",
                    s.rate_wait_s())
              : "";
      std::fprintf(
          stderr,
          "%llu ok, %llu failed, %llu retries in %.1f s (%.0f req/s)%s%s\n",
          static_cast<unsigned long long>(s.ok()),
          static_cast<unsigned long long>(s.failed()),
          static_cast<unsigned long long>(s.retries()), s.elapsed_s(), rate,
          waited.c_str(), s.state() == v1::JOB_CANCELLED ? " [cancelled]" : "");
      return s.failed() > 0 ? kExitSomeFailed : kExitOk;
    }
    if (detached_) return kExitOk;  // we hung up on purpose; the job runs on
    std::fprintf(stderr, "error: %s\n", status.error_message().c_str());
    if (!job_id_.empty()) {
      std::fprintf(
          stderr,
          "the job may still be running: fetchctl watch %s --from %llu\n",
          job_id_.c_str(), static_cast<unsigned long long>(last_seq_ + 1));
    }
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE)
      return kExitUnreachable;
    if (status.error_code() == grpc::StatusCode::NOT_FOUND ||
        status.error_code() == grpc::StatusCode::OUT_OF_RANGE ||
        status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      return kExitUsage;
    }
    return kExitSomeFailed;
  }

 private:
  FILE* out_;
  const OutputOptions& options_;
  Progress progress_;
  std::string job_id_;
  uint64_t last_seq_ = 0;
  v1::JobStatus finished_;
  bool got_finished_ = false;
  bool detached_ = false;
};

// OpenOutput opens the result file, or returns stdout.
FILE* OpenOutput(const OutputOptions& options) {
  if (options.output_path.empty() || options.output_path == "-") return stdout;
  FILE* file = std::fopen(options.output_path.c_str(), "wb");
  if (file == nullptr) {
    std::fprintf(stderr, "cannot write %s: %s\n", options.output_path.c_str(),
                 std::strerror(errno));
  }
  return file;
}

}  // namespace

bool CheckReachable(const std::shared_ptr<grpc::Channel>& channel,
                    absl::Duration timeout) {
  return channel->WaitForConnected(
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
}

int SubmitJob(const std::shared_ptr<grpc::Channel>& channel,
              const v1::JobOptions& options, InputReader* input,
              const OutputOptions& output) {
  FILE* out = OpenOutput(output);
  if (out == nullptr) return kExitUsage;
  std::unique_ptr<v1::JobService::Stub> stub = v1::JobService::NewStub(channel);
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<v1::SubmitRequest, v1::JobEvent>>
      stream = stub->Submit(&context);

  std::thread writer([&] {
    v1::SubmitRequest request;
    *request.mutable_options() = options;
    std::vector<std::string> lines;
    bool more = true;
    do {
      more = input->NextBatch(kBatchLines, kBatchBytes, &lines);
      for (std::string& line : lines) request.add_lines(std::move(line));
      // The first message always goes, so that even empty input makes a job.
      if (!stream->Write(request))
        return;  // the call ended; Finish reports why
      request.Clear();
    } while (more);
    stream->WritesDone();
  });

  EventPrinter printer(out, output);
  v1::JobEvent event;
  while (stream->Read(&event)) {
    if (!printer.Handle(event)) break;
  }
  // Reading has stopped (the job ended, we detached, or the stream failed): end
  // the call, so a writer blocked on flow control returns instead of waiting
  // forever.
  context.TryCancel();
  writer.join();
  grpc::Status status = stream->Finish();
  int code = printer.Finish(status);
  if (out != stdout) std::fclose(out);
  return code;
}

int WatchJob(const std::shared_ptr<grpc::Channel>& channel,
             const std::string& job_id, uint64_t from_seq,
             const OutputOptions& output) {
  FILE* out = OpenOutput(output);
  if (out == nullptr) return kExitUsage;
  std::unique_ptr<v1::JobService::Stub> stub = v1::JobService::NewStub(channel);
  grpc::ClientContext context;
  v1::WatchRequest request;
  request.set_job_id(job_id);
  request.set_from_seq(from_seq);
  std::unique_ptr<grpc::ClientReader<v1::JobEvent>> stream =
      stub->Watch(&context, request);
  OutputOptions quiet = output;
  quiet.detach = false;
  EventPrinter printer(out, quiet);
  v1::JobEvent event;
  while (stream->Read(&event)) printer.Handle(event);
  int code = printer.Finish(stream->Finish());
  if (out != stdout) std::fclose(out);
  return code;
}

}  // namespace fetchfleet::fetchctl
