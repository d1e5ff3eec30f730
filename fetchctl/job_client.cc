#include "fetchctl/job_client.h"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
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

  // The last seq written out, and whether the job's end came.
  uint64_t last_seq() const { return last_seq_; }
  bool finished() const { return got_finished_; }

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

namespace {

// LinePump reads the input on a thread of its own into a short queue, so that
// the input outlives any one Submit stream: a stream that breaks leaves the
// input where it was, and the next stream goes on from there.
//
// Thread-safe.
class LinePump {
 public:
  explicit LinePump(InputReader* input) : input_(input) {
    thread_ = std::thread([this] { Run(); });
  }
  ~LinePump() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    changed_.notify_all();
    input_->Cancel();
    thread_.join();
  }

  // Next waits for the next batch; false at the end of input (or a read
  // error: failed() then) or when `abandon` is set.
  bool Next(std::vector<std::string>* lines, const std::atomic<bool>& abandon) {
    std::unique_lock<std::mutex> lock(mu_);
    while (queue_.empty() && !ended_ && !abandon.load()) {
      changed_.wait_for(lock, std::chrono::milliseconds(50));
    }
    if (queue_.empty()) return false;
    *lines = std::move(queue_.front());
    queue_.pop_front();
    changed_.notify_all();
    return true;
  }
  bool ended() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ended_ && queue_.empty();
  }
  bool failed() const { return failed_.load(); }

 private:
  void Run() {
    while (true) {
      std::vector<std::string> lines;
      bool more = input_->NextBatch(kBatchLines, kBatchBytes, &lines);
      std::unique_lock<std::mutex> lock(mu_);
      if (!input_->status().ok()) failed_.store(true);
      if (!lines.empty()) queue_.push_back(std::move(lines));
      if (!more || failed_.load() || stopping_) {
        ended_ = true;
        changed_.notify_all();
        return;
      }
      changed_.notify_all();
      changed_.wait(lock, [this] { return queue_.size() < 4 || stopping_; });
    }
  }

  InputReader* const input_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::deque<std::vector<std::string>> queue_;
  bool ended_ = false;
  bool stopping_ = false;
  std::atomic<bool> failed_{false};
  std::thread thread_;
};

// ResendBuffer keeps the input lines sent since the last the coordinator made
// durable (JobEvent.input_durable), to send again on a new stream. A
// coordinator without a store says so at once; nothing is kept then.
//
// Thread-safe.
class ResendBuffer {
 public:
  void Add(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu_);
    if (keep_) lines_.push_back(line);
  }
  void Ack(uint64_t durable) {
    std::lock_guard<std::mutex> lock(mu_);
    while (acked_ < durable && !lines_.empty()) {
      lines_.pop_front();
      ++acked_;
    }
    acked_ = std::max(acked_, durable);
  }
  void StopKeeping() {
    std::lock_guard<std::mutex> lock(mu_);
    keep_ = false;
    lines_.clear();
  }
  uint64_t acked() const {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  std::vector<std::string> Unacked() const {
    std::lock_guard<std::mutex> lock(mu_);
    return {lines_.begin(), lines_.end()};
  }

 private:
  mutable std::mutex mu_;
  std::deque<std::string> lines_;
  uint64_t acked_ = 0;
  bool keep_ = true;
};

// CurrentCall routes fetchctl's signal to whichever call is open now, and
// wakes a reconnect's backoff.
//
// Thread-safe.
class CurrentCall {
 public:
  void Set(grpc::ClientContext* context) {
    std::lock_guard<std::mutex> lock(mu_);
    context_ = context;
    if (context_ != nullptr && signal_ != 0) context_->TryCancel();
  }
  void OnSignal(int signal) {
    std::lock_guard<std::mutex> lock(mu_);
    signal_ = signal;
    if (context_ != nullptr) context_->TryCancel();
    woken_.notify_all();
  }
  // Sleep waits `delay`; false when a signal came.
  bool Sleep(absl::Duration delay) {
    std::unique_lock<std::mutex> lock(mu_);
    woken_.wait_for(lock,
                    std::chrono::microseconds(absl::ToInt64Microseconds(delay)),
                    [this] { return signal_ != 0; });
    return signal_ == 0;
  }
  int signal() const {
    std::lock_guard<std::mutex> lock(mu_);
    return signal_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable woken_;
  grpc::ClientContext* context_ = nullptr;
  int signal_ = 0;
};

// Reconnects: the backoff of a job stream that broke, and its limit.
class Reconnects {
 public:
  explicit Reconnects(absl::Duration limit) : limit_(limit) {}
  // Next: the delay before the next attempt, or nullopt when the limit is
  // spent (said on stderr either way).
  std::optional<absl::Duration> Next(const grpc::Status& status,
                                     const std::string& job_id) {
    absl::Time now = absl::Now();
    if (attempt_ == 0) first_ = now;
    ++attempt_;
    if (limit_ <= absl::ZeroDuration() || now - first_ >= limit_) {
      if (limit_ > absl::ZeroDuration())
        std::fprintf(
            stderr, "gave up reconnecting after %s\n",
            absl::FormatDuration(absl::Trunc(now - first_, absl::Seconds(1)))
                .c_str());
      return std::nullopt;
    }
    absl::Duration delay =
        std::min(absl::Milliseconds(200) * (1 << std::min(attempt_ - 1, 5)),
                 absl::Seconds(5));
    std::fprintf(stderr,
                 "job %s: the coordinator stream broke (%s); reconnecting "
                 "in %s (attempt %d, giving up after %s)\n",
                 job_id.c_str(), ErrorText(status).c_str(),
                 absl::FormatDuration(delay).c_str(), attempt_,
                 absl::FormatDuration(limit_).c_str());
    return delay;
  }
  // Connected: a stream got through; the next break starts a new count.
  void Connected() { attempt_ = 0; }

 private:
  const absl::Duration limit_;
  int attempt_ = 0;
  absl::Time first_;
};

// StreamEnd: how one stream of a job ended.
struct StreamEnd {
  grpc::Status status;
  bool stopped = false;        // we stopped reading (detach, output failed)
  bool output_closed = false;  // the OutputWatch saw the reader go
  bool got_events = false;     // the coordinator sent something
};

bool Reconnectable(const StreamEnd& end, bool durable, int signal) {
  return durable && !end.stopped && !end.output_closed && signal == 0 &&
         ExitCodeForBrokenStream(end.status) == kExitUnreachable;
}

}  // namespace

int SubmitJob(const std::shared_ptr<grpc::Channel>& channel,
              const v1::JobOptions& options, InputReader* input,
              const OutputOptions& output) {
  FILE* out = OpenOutput(output);
  if (out == nullptr) return kExitUsage;
  std::unique_ptr<v1::JobService::Stub> stub = v1::JobService::NewStub(channel);
  OutputOptions submitting = output;
  submitting.submitting = true;
  EventPrinter printer(out, submitting);
  CurrentCall call;
  InterruptScope interrupt([&call](int signal) { call.OnSignal(signal); });
  LinePump pump(input);
  ResendBuffer resend;
  Reconnects reconnects(output.reconnect_for);
  std::string job_id;
  bool durable = false;
  bool input_sent = false;      // the pump ended and every line went out
  bool input_complete = false;  // the coordinator holds the whole input
  StreamEnd end;
  while (true) {
    grpc::ClientContext context;
    call.Set(&context);
    std::unique_ptr<grpc::ClientReaderWriter<v1::SubmitRequest, v1::JobEvent>>
        stream = stub->Submit(&context);
    std::atomic<bool> abandon{false};
    std::promise<void> writer_done;
    std::future<void> writer_finished = writer_done.get_future();
    const bool resuming = !job_id.empty();
    const uint64_t from_line = resend.acked();
    const uint64_t from_seq = printer.last_seq() + 1;
    std::thread writer([&] {
      WhenDone done([&] { writer_done.set_value(); });
      v1::SubmitRequest request;
      *request.mutable_options() = options;
      request.set_detach(output.detach);
      if (resuming) {
        request.set_resume_job_id(job_id);
        request.set_resume_from_line(from_line);
        request.set_from_seq(from_seq);
        if (input_complete) {
          // Nothing left to send: the results alone are wanted.
          stream->Write(request);
          stream->WritesDone();
          return;
        }
        // Lines sent before that may not have reached the store go again.
        size_t bytes = 0;
        for (std::string& line : resend.Unacked()) {
          bytes += line.size();
          request.add_lines(std::move(line));
          if (static_cast<size_t>(request.lines_size()) >= kBatchLines ||
              bytes >= kBatchBytes) {
            if (!stream->Write(request)) return;
            request.Clear();
            bytes = 0;
          }
        }
      }
      std::vector<std::string> lines;
      bool first = true;
      while (pump.Next(&lines, abandon)) {
        for (std::string& line : lines) {
          resend.Add(line);
          request.add_lines(std::move(line));
        }
        if (!stream->Write(request)) return;  // Finish reports why
        request.Clear();
        first = false;
      }
      if (abandon.load()) return;
      if (pump.failed()) {
        // Not an end of input: end the call instead of closing the input, so
        // the job does not pass for complete.
        context.TryCancel();
        return;
      }
      // The first message always goes, so that even empty input makes a job.
      if (first && !stream->Write(request)) return;
      input_sent = true;
      stream->WritesDone();
    });

    OutputWatch watch(out, &context);
    v1::JobEvent event;
    end = StreamEnd();
    while (stream->Read(&event)) {
      end.got_events = true;
      reconnects.Connected();
      if (event.kind_case() == v1::JobEvent::kJobId) {
        if (job_id.empty()) {
          job_id = event.job_id();
          durable = event.durable();
          if (!durable) resend.StopKeeping();
        } else if (event.job_id() != job_id) {
          end.status = grpc::Status(grpc::StatusCode::INTERNAL,
                                    "the coordinator resumed another job");
          end.stopped = true;
          break;
        }
        if (resuming) continue;  // said once
      }
      if (event.kind_case() == v1::JobEvent::kInputDurable) {
        resend.Ack(event.input_durable());
        continue;
      }
      if (event.kind_case() == v1::JobEvent::kInputComplete)
        input_complete = true;
      if (!printer.Handle(event)) {
        end.stopped = true;
        break;
      }
    }
    // Reading has stopped. If we stopped (detach, the output failed), end the
    // call, so that a writer blocked on flow control returns. If the stream
    // ended, the call is over and the writer returns by itself; cancelling
    // then would replace the coordinator's status (NOT_FOUND, UNAVAILABLE...)
    // with our CANCELLED, so only a writer still stuck after a grace period
    // is. A writer waiting for input is let go: this stream takes no more.
    abandon.store(true);
    if (end.stopped ||
        writer_finished.wait_for(kWriterGrace) != std::future_status::ready) {
      context.TryCancel();
    }
    watch.Stop();
    writer.join();
    call.Set(nullptr);
    grpc::Status status = stream->Finish();
    if (end.status.ok()) end.status = status;
    end.output_closed = watch.closed();
    if (pump.failed() && !input_sent) break;
    if (printer.finished() ||
        !Reconnectable(end, durable && !job_id.empty(), call.signal()))
      break;
    std::optional<absl::Duration> delay = reconnects.Next(end.status, job_id);
    if (!delay || !call.Sleep(*delay)) break;
  }
  int code = pump.failed() && !printer.finished()
                 ? printer.InputFailed(input->status())
                 : printer.Finish(end.status, end.output_closed, call.signal());
  return CloseOutput(out, output, code);
}

int WatchJob(const std::shared_ptr<grpc::Channel>& channel,
             const std::string& job_id, uint64_t from_seq,
             const OutputOptions& output) {
  FILE* out = OpenOutput(output);
  if (out == nullptr) return kExitUsage;
  std::unique_ptr<v1::JobService::Stub> stub = v1::JobService::NewStub(channel);
  OutputOptions quiet = output;
  quiet.detach = false;
  quiet.submitting = false;
  EventPrinter printer(out, quiet, job_id, from_seq);
  CurrentCall call;
  InterruptScope interrupt([&call](int signal) { call.OnSignal(signal); });
  Reconnects reconnects(output.reconnect_for);
  bool durable = false;
  StreamEnd end;
  while (true) {
    grpc::ClientContext context;
    call.Set(&context);
    v1::WatchRequest request;
    request.set_job_id(job_id);
    request.set_from_seq(printer.last_seq() + 1);
    std::unique_ptr<grpc::ClientReader<v1::JobEvent>> stream =
        stub->Watch(&context, request);
    OutputWatch watch(out, &context);
    v1::JobEvent event;
    bool said_id = end.got_events;
    end = StreamEnd();
    while (stream->Read(&event)) {
      end.got_events = true;
      reconnects.Connected();
      if (event.kind_case() == v1::JobEvent::kJobId) {
        durable = event.durable();
        if (said_id) continue;
      }
      if (!printer.Handle(event)) {
        // We stopped (the output failed): end the call. Not when the stream
        // ended: that would replace the coordinator's status with CANCELLED.
        context.TryCancel();
        end.stopped = true;
        break;
      }
    }
    watch.Stop();
    call.Set(nullptr);
    end.status = stream->Finish();
    end.output_closed = watch.closed();
    end.got_events = end.got_events || said_id;
    if (printer.finished() || !Reconnectable(end, durable, call.signal()))
      break;
    std::optional<absl::Duration> delay = reconnects.Next(end.status, job_id);
    if (!delay || !call.Sleep(*delay)) break;
  }
  int code = printer.Finish(end.status, end.output_closed, call.signal());
  return CloseOutput(out, output, code);
}

}  // namespace fetchfleet::fetchctl
