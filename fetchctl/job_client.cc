#include "fetchctl/job_client.h"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/result_json.h"
#include "fetchctl/exit_codes.h"
#include "fetchctl/interrupt.h"
#include "fetchctl/job_stats.h"
#include "fetchctl/progress.h"
#include "proto/fetchfleet.grpc.pb.h"

namespace fetchfleet::fetchctl {
namespace {

constexpr size_t kBatchLines = 1000;
constexpr size_t kBatchBytes = 1 << 20;
// How long a submit's input writer may take to notice that the call ended.
constexpr auto kWriterGrace = std::chrono::seconds(2);

// WhenDone runs a function when it goes out of scope.
class WhenDone {
 public:
  explicit WhenDone(std::function<void()> f) : f_(std::move(f)) {}
  ~WhenDone() { f_(); }

 private:
  std::function<void()> f_;
};

// FormatElapsed prints a job's time so that a short job does not read "0.0 s".
std::string FormatElapsed(double seconds) {
  if (seconds < 0.01) return absl::StrFormat("%.1f ms", seconds * 1000);
  if (seconds < 1) return absl::StrFormat("%.0f ms", seconds * 1000);
  return absl::StrFormat("%.1f s", seconds);
}

// OutputWatch notices that the reader of a pipe or socket went away (`fetchctl
// submit | head -5`) while no result is being written, and then cancels the
// call, so that fetchctl ends at once instead of at the next result (which
// may be minutes away). Regular files and terminals are not watched.
//
// Thread-safe: it runs its own thread; Stop() from the owner.
class OutputWatch {
 public:
  OutputWatch(FILE* out, grpc::ClientContext* context) : context_(context) {
    int fd = ::fileno(out);
    struct stat st;
    if (fd < 0 || ::fstat(fd, &st) != 0 ||
        !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
      return;
    if (::pipe(wake_) != 0) return;
    thread_ = std::thread([this, fd] { Run(fd); });
  }
  ~OutputWatch() { Stop(); }

  void Stop() {
    if (!thread_.joinable()) return;
    char byte = 0;
    while (::write(wake_[1], &byte, 1) < 0 && errno == EINTR) {
    }
    thread_.join();
    ::close(wake_[0]);
    ::close(wake_[1]);
  }

  // closed: the reader went away.
  bool closed() const { return closed_.load(); }

 private:
  void Run(int fd) {
    // events 0: only POLLERR (a pipe without readers) and POLLHUP are asked.
    struct pollfd fds[2] = {{fd, 0, 0}, {wake_[0], POLLIN, 0}};
    while (true) {
      int n = ::poll(fds, 2, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || (fds[1].revents & POLLIN)) return;
      if (fds[0].revents & (POLLERR | POLLHUP)) {
        closed_.store(true);
        context_->TryCancel();
        return;
      }
    }
  }

  grpc::ClientContext* const context_;
  int wake_[2] = {-1, -1};
  std::thread thread_;
  std::atomic<bool> closed_{false};
};

// EventPrinter turns a job's event stream into JSON Lines, a progress bar and a
// summary. Each batch of results is written and flushed as it arrives: a
// result fetchctl received is in the output even if fetchctl is killed next.
class EventPrinter {
 public:
  EventPrinter(FILE* out, const OutputOptions& options, std::string job_id = "",
               uint64_t from_seq = 1)
      : out_(out),
        options_(options),
        progress_(options.progress),
        job_id_(std::move(job_id)),
        last_seq_(from_seq - 1) {}

  // Handle consumes one event; false when the caller should stop reading
  // (detach, or the output cannot be written).
  bool Handle(const v1::JobEvent& event) {
    switch (event.kind_case()) {
      case v1::JobEvent::kJobId:
        job_id_ = event.job_id();
        if (!options_.detach) {
          std::fprintf(stderr, "job %s\n", job_id_.c_str());
        }
        return true;
      case v1::JobEvent::kInputComplete:
        input_complete_ = true;
        progress_.SetTotal(event.input_complete().total());
        if (options_.detach) {
          detached_ = true;
          std::string line = absl::StrCat(job_id_, "\n");
          if (!Write(stdout, line)) return false;
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
        // Detached, stdout carries the job id alone; the results wait on the
        // coordinator for `watch` (from seq 1).
        if (options_.detach) return true;
        std::string text;
        uint64_t failed = 0;
        uint64_t last_seq = last_seq_;
        for (const v1::FetchResult& result : event.results().results()) {
          AppendResultJson(result, &text);
          text.push_back('\n');
          last_seq = result.seq();
          if (!result.ok()) ++failed;
        }
        if (!Write(out_, text)) return false;
        last_seq_ = last_seq;
        written_ += event.results().results_size();
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

  // Finish prints the summary and returns the exit code. `output_closed`: the
  // OutputWatch saw the reader go; `interrupted`: the signal that stopped us.
  int Finish(const grpc::Status& status, bool output_closed, int interrupted) {
    progress_.Clear();
    if (got_finished_) {
      const v1::JobStatus& s = finished_;
      std::string rate =
          s.elapsed_s() > 0
              ? absl::StrFormat(" (%.0f req/s)", s.done() / s.elapsed_s())
              : "";
      // Waiting for rate limits is said only when there was some.
      std::string waited =
          s.rate_wait_s() >= 0.05
              ? absl::StrFormat(
                    "; %.1f s of request time waiting for rate limits",
                    s.rate_wait_s())
              : "";
      std::fprintf(stderr, "%llu ok, %llu failed, %llu retries in %s%s%s%s\n",
                   static_cast<unsigned long long>(s.ok()),
                   static_cast<unsigned long long>(s.failed()),
                   static_cast<unsigned long long>(s.retries()),
                   FormatElapsed(s.elapsed_s()).c_str(), rate.c_str(),
                   waited.c_str(),
                   s.state() == v1::JOB_CANCELLED ? " [cancelled]" : "");
      std::fprintf(stderr, "%s\n", StatsSummary(s).c_str());
      int code = s.failed() > 0 ? kExitSomeFailed : kExitOk;
      if (!options_.stats_json_path.empty() && !WriteStatsJson(s))
        code = kExitSomeFailed;
      return code;
    }
    if (output_closed && write_errno_ == 0) write_errno_ = EPIPE;
    if (write_errno_ != 0) return OutputFailed();
    if (detached_) return kExitOk;  // we hung up on purpose; the job runs on
    if (interrupted != 0) {
      std::fprintf(stderr, "interrupted (%s) after %llu results\n",
                   strsignal(interrupted),
                   static_cast<unsigned long long>(written_));
      SayItRunsOn();
      return 128 + interrupted;
    }
    int code = ExitCodeForBrokenStream(status);
    std::fprintf(stderr, "error: %s\n", ErrorText(status).c_str());
    if (code == kExitUnreachable && !job_id_.empty()) {
      std::fprintf(
          stderr,
          "the job may still be running: fetchctl watch %s --from %llu\n",
          job_id_.c_str(), static_cast<unsigned long long>(last_seq_ + 1));
    }
    return code;
  }

  // InputFailed: the input could not be read to its end.
  int InputFailed(const absl::Status& status) {
    progress_.Clear();
    std::fprintf(stderr, "error: %s\n", std::string(status.message()).c_str());
    if (!job_id_.empty() && !options_.embedded) {
      std::fprintf(stderr,
                   "job %s has only the input lines sent before; fetchctl "
                   "cancel %s stops it\n",
                   job_id_.c_str(), job_id_.c_str());
    }
    return kExitUsage;
  }

 private:
  // Write writes and flushes `text`; false (and the error kept) when it could
  // not (EPIPE: the reader went away; ENOSPC...).
  bool Write(FILE* file, const std::string& text) {
    if (text.empty()) return true;
    if (std::fwrite(text.data(), 1, text.size(), file) == text.size() &&
        std::fflush(file) == 0) {
      return true;
    }
    write_errno_ = errno != 0 ? errno : EIO;
    return false;
  }

  // WriteStatsJson writes --stats-json FILE; false (and said) when it could
  // not.
  bool WriteStatsJson(const v1::JobStatus& status) {
    const std::string& path = options_.stats_json_path;
    FILE* file = std::fopen(path.c_str(), "wb");
    std::string text = StatsJson(status) + "\n";
    bool ok = file != nullptr &&
              std::fwrite(text.data(), 1, text.size(), file) == text.size();
    int error = errno;
    if (file != nullptr && std::fclose(file) != 0 && ok) {
      ok = false;
      error = errno;
    }
    if (!ok) {
      std::fprintf(stderr, "error: writing --stats-json %s: %s\n", path.c_str(),
                   std::strerror(error));
    }
    return ok;
  }

  // OutputFailed: results could not be written; the job goes on without us.
  int OutputFailed() {
    std::string where =
        options_.output_path.empty() || options_.output_path == "-"
            ? "stdout"
            : options_.output_path;
    std::fprintf(stderr,
                 "error: writing results to %s: %s%s after %llu results\n",
                 where.c_str(), std::strerror(write_errno_),
                 write_errno_ == EPIPE ? " (the output was closed)" : "",
                 static_cast<unsigned long long>(written_));
    SayItRunsOn();
    return kExitSomeFailed;
  }

  // SayItRunsOn: we stopped reading; the job did not stop.
  void SayItRunsOn() {
    if (options_.embedded) {
      std::fprintf(stderr, "the job stops with fetchctl run\n");
      return;
    }
    if (!job_id_.empty()) {
      std::fprintf(stderr,
                   "job %s keeps running on the coordinator%s: fetchctl watch "
                   "%s --from %llu reads the rest, fetchctl cancel %s stops "
                   "it\n",
                   job_id_.c_str(),
                   input_complete_ || !options_.submitting
                       ? ""
                       : " with only the input lines sent so far",
                   job_id_.c_str(),
                   static_cast<unsigned long long>(last_seq_ + 1),
                   job_id_.c_str());
    }
  }

  FILE* out_;
  const OutputOptions& options_;
  Progress progress_;
  std::string job_id_;
  uint64_t last_seq_ = 0;  // the last seq written out
  uint64_t written_ = 0;
  v1::JobStatus finished_;
  bool got_finished_ = false;
  bool input_complete_ = false;
  bool detached_ = false;
  int write_errno_ = 0;
};

// OpenOutput opens the result file, or returns stdout.
FILE* OpenOutput(const OutputOptions& options) {
  if (options.output_path.empty() || options.output_path == "-") return stdout;
  FILE* file = std::fopen(options.output_path.c_str(), "wb");
  if (file == nullptr) {
    std::fprintf(stderr, "error: cannot write %s: %s\n",
                 options.output_path.c_str(), std::strerror(errno));
  }
  return file;
}

// CloseOutput closes a result file; a failed close (the last bytes not
// written: a full disk, NFS) is reported and fails the command.
int CloseOutput(FILE* out, const OutputOptions& options, int code) {
  if (out == stdout) return code;
  if (std::fclose(out) != 0) {
    std::fprintf(stderr, "error: writing %s: %s\n", options.output_path.c_str(),
                 std::strerror(errno));
    return code == kExitOk ? kExitSomeFailed : code;
  }
  return code;
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

  std::atomic<bool> input_failed{false};
  std::promise<void> writer_done;
  std::future<void> writer_finished = writer_done.get_future();
  std::thread writer([&] {
    WhenDone done([&] { writer_done.set_value(); });
    v1::SubmitRequest request;
    *request.mutable_options() = options;
    std::vector<std::string> lines;
    bool more = true;
    do {
      more = input->NextBatch(kBatchLines, kBatchBytes, &lines);
      if (!input->status().ok()) {
        // Not an end of input: end the call instead of closing the input,
        // so the job does not pass for complete.
        input_failed.store(true);
        context.TryCancel();
        return;
      }
      for (std::string& line : lines) request.add_lines(std::move(line));
      // The first message always goes, so that even empty input makes a job.
      if (!stream->Write(request))
        return;  // the call ended; Finish reports why
      request.Clear();
    } while (more);
    stream->WritesDone();
  });

  OutputOptions submitting = output;
  submitting.submitting = true;
  EventPrinter printer(out, submitting);
  OutputWatch watch(out, &context);
  InterruptScope interrupt(&context);
  v1::JobEvent event;
  bool stopped = false;  // we stopped reading before the stream ended
  while (stream->Read(&event)) {
    if (!printer.Handle(event)) {
      stopped = true;
      break;
    }
  }
  // Reading has stopped. If we stopped (detach, the output failed), end the
  // call, so that a writer blocked on flow control returns. If the stream
  // ended, the call is over and the writer returns by itself; cancelling then
  // would replace the coordinator's status (NOT_FOUND, UNAVAILABLE...) with
  // our CANCELLED, so only a writer still stuck after a grace period is. A
  // writer waiting for input is woken: nothing more will be sent either way.
  input->Cancel();
  if (stopped ||
      writer_finished.wait_for(kWriterGrace) != std::future_status::ready) {
    context.TryCancel();
  }
  watch.Stop();
  writer.join();
  grpc::Status status = stream->Finish();
  int code = input_failed.load()
                 ? printer.InputFailed(input->status())
                 : printer.Finish(status, watch.closed(), interrupt.signal());
  return CloseOutput(out, output, code);
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
  quiet.submitting = false;
  EventPrinter printer(out, quiet, job_id, from_seq);
  OutputWatch watch(out, &context);
  InterruptScope interrupt(&context);
  v1::JobEvent event;
  while (stream->Read(&event)) {
    if (!printer.Handle(event)) {
      // We stopped (the output failed): end the call. Not when the stream
      // ended: that would replace the coordinator's status with CANCELLED.
      context.TryCancel();
      break;
    }
  }
  watch.Stop();
  int code =
      printer.Finish(stream->Finish(), watch.closed(), interrupt.signal());
  return CloseOutput(out, output, code);
}

}  // namespace fetchfleet::fetchctl
