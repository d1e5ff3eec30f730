// OtlpExporter: finished spans out of the process, in batches, off the hot
// path. Any thread hands a span to Export(), which only takes a lock to push
// it onto a bounded queue (full: the span is dropped and counted, the queue
// never grows); one background thread takes up to `batch_spans` at a time,
// or whatever is there every `batch_interval`, wraps them with the process's
// resource (service.name, service.instance.id) and sends one OTLP
// ExportTraceServiceRequest through a SpanSink (GrpcSpanSink: the collector's
// TraceService/Export over gRPC). A failed export drops its batch, counts it
// and is logged at most every 30 s; the fetch loops never wait for it.
// Shutdown flushes what is queued within a deadline.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace fetchfleet {

namespace otlp = ::opentelemetry::proto;

// SpanSink sends one export request; abstract so a test can hold the
// exporter's thread still.
class SpanSink {
 public:
  virtual ~SpanSink() = default;
  virtual absl::Status Send(
      const otlp::collector::trace::v1::ExportTraceServiceRequest& request,
      absl::Time deadline) = 0;
};

// GrpcSpanSink: OTLP/gRPC to `endpoint` (host:port, plaintext).
std::unique_ptr<SpanSink> NewGrpcSpanSink(const std::string& endpoint);

class OtlpExporter {
 public:
  struct Options {
    std::string service_name;         // fetchfleet-coordinator, ...-worker
    std::string service_instance_id;  // this process
    size_t queue_spans = 8192;
    size_t batch_spans = 512;
    absl::Duration batch_interval = absl::Seconds(1);
    absl::Duration export_timeout = absl::Seconds(10);
  };

  OtlpExporter(Options options, std::unique_ptr<SpanSink> sink);
  // Shuts down with a 5 s flush deadline if Shutdown was not called.
  ~OtlpExporter();
  OtlpExporter(const OtlpExporter&) = delete;
  OtlpExporter& operator=(const OtlpExporter&) = delete;

  // Export queues a finished span (or drops it when the queue is full).
  void Export(otlp::trace::v1::Span span);
  // Shutdown sends what is queued, spending at most `deadline` from now, and
  // stops the thread; later spans are dropped. Idempotent.
  void Shutdown(absl::Duration deadline);

  // Counters, for /metrics.
  uint64_t spans_exported() const { return exported_.load(); }
  uint64_t spans_dropped() const { return dropped_.load(); }
  uint64_t export_errors() const { return errors_.load(); }

 private:
  void Run();
  void Send(std::deque<otlp::trace::v1::Span>* batch, absl::Time deadline);

  const Options options_;
  const std::unique_ptr<SpanSink> sink_;
  // std::mutex, not absl::Mutex: ThreadSanitizer sees pthread's locking even
  // in Debian's uninstrumented libraries, so the handoff is checked.
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<otlp::trace::v1::Span> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  absl::Time flush_deadline_;                // guarded by mu_
  std::atomic<uint64_t> exported_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> errors_{0};
  absl::Time last_error_log_ = absl::InfinitePast();  // exporter thread only
  std::thread thread_;
};

// Span helpers: fill an OTLP span from a trace context.
struct TraceContext;
// NewSpan: a span named `name` with `context`'s trace and span ids, parented
// to `parent_span_id` (0: a root), from `start` to `end`.
otlp::trace::v1::Span NewSpan(absl::string_view name,
                              const TraceContext& context,
                              uint64_t parent_span_id, absl::Time start,
                              absl::Time end);
void SetAttribute(otlp::trace::v1::Span* span, absl::string_view key,
                  absl::string_view value);
void SetAttribute(otlp::trace::v1::Span* span, absl::string_view key,
                  const char* value);
void SetAttribute(otlp::trace::v1::Span* span, absl::string_view key,
                  int64_t value);
void SetAttribute(otlp::trace::v1::Span* span, absl::string_view key,
                  double value);
void SetAttribute(otlp::trace::v1::Span* span, absl::string_view key,
                  bool value);
// SetError marks the span failed with `message`.
void SetError(otlp::trace::v1::Span* span, absl::string_view message);

}  // namespace fetchfleet
