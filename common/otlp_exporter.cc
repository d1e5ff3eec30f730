#include "common/otlp_exporter.h"

#include <grpcpp/grpcpp.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/trace_context.h"

namespace fetchfleet {
namespace {

using otlp::collector::trace::v1::ExportTraceServiceRequest;
using otlp::collector::trace::v1::ExportTraceServiceResponse;
using otlp::collector::trace::v1::TraceService;
using otlp::trace::v1::Span;

constexpr absl::Duration kErrorLogEvery = absl::Seconds(30);

class GrpcSpanSink final : public SpanSink {
 public:
  explicit GrpcSpanSink(const std::string& endpoint)
      : endpoint_(endpoint),
        stub_(TraceService::NewStub(grpc::CreateChannel(
            endpoint, grpc::InsecureChannelCredentials()))) {}

  absl::Status Send(const ExportTraceServiceRequest& request,
                    absl::Time deadline) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    ExportTraceServiceResponse response;
    grpc::Status status = stub_->Export(&context, request, &response);
    if (status.ok()) return absl::OkStatus();
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat("OTLP export to ", endpoint_, ": ",
                                     status.error_message()));
  }

 private:
  const std::string endpoint_;
  std::unique_ptr<TraceService::Stub> stub_;
};

// Ascii: protobuf strings must be UTF-8, and a URL or an error message may
// carry any byte; a non-ASCII byte becomes '?'.
std::string Ascii(absl::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) >= 0x80) c = '?';
  }
  return out;
}

void SetStringAttribute(otlp::common::v1::KeyValue* kv, absl::string_view key,
                        absl::string_view value) {
  kv->set_key(std::string(key));
  kv->mutable_value()->set_string_value(Ascii(value));
}

}  // namespace

std::unique_ptr<SpanSink> NewGrpcSpanSink(const std::string& endpoint) {
  return std::make_unique<GrpcSpanSink>(endpoint);
}

OtlpExporter::OtlpExporter(Options options, std::unique_ptr<SpanSink> sink)
    : options_(std::move(options)), sink_(std::move(sink)) {
  thread_ = std::thread([this] { Run(); });
}

OtlpExporter::~OtlpExporter() { Shutdown(absl::Seconds(5)); }

void OtlpExporter::Export(Span span) {
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_ || queue_.size() >= options_.queue_spans) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  queue_.push_back(std::move(span));
  if (queue_.size() >= options_.batch_spans) wake_.notify_one();
}

void OtlpExporter::Shutdown(absl::Duration deadline) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!stopping_) {
      stopping_ = true;
      flush_deadline_ = absl::Now() + deadline;
      wake_.notify_one();
    }
  }
  if (thread_.joinable()) {
    thread_.join();
    FF_LOG(INFO) << "trace export: " << exported_.load() << " spans exported, "
                 << dropped_.load() << " dropped (queue full, export failed "
                 << "or out of time), " << errors_.load() << " export errors";
  }
}

void OtlpExporter::Run() {
  for (;;) {
    std::deque<Span> batch;
    absl::Time deadline;
    bool last = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      absl::Time wake_at = absl::Now() + options_.batch_interval;
      while (!stopping_ && queue_.size() < options_.batch_spans) {
        if (wake_.wait_for(lock,
                           absl::ToChronoMicroseconds(wake_at - absl::Now())) ==
            std::cv_status::timeout)
          break;  // timed out
      }
      size_t n = std::min(queue_.size(), options_.batch_spans);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      if (stopping_) {
        deadline = flush_deadline_;
        last = queue_.empty();
        if (absl::Now() >= deadline) {
          // Out of time: what is left is dropped, and counted.
          dropped_.fetch_add(batch.size() + queue_.size());
          queue_.clear();
          return;
        }
      } else {
        deadline = absl::Now() + options_.export_timeout;
      }
    }
    if (!batch.empty()) Send(&batch, deadline);
    if (last) return;
  }
}

void OtlpExporter::Send(std::deque<Span>* batch, absl::Time deadline) {
  ExportTraceServiceRequest request;
  otlp::trace::v1::ResourceSpans* resource_spans = request.add_resource_spans();
  otlp::resource::v1::Resource* resource = resource_spans->mutable_resource();
  SetStringAttribute(resource->add_attributes(), "service.name",
                     options_.service_name);
  SetStringAttribute(resource->add_attributes(), "service.instance.id",
                     options_.service_instance_id);
  SetStringAttribute(resource->add_attributes(), "service.version",
                     FETCHFLEET_VERSION);
  otlp::trace::v1::ScopeSpans* scope = resource_spans->add_scope_spans();
  scope->mutable_scope()->set_name("fetchfleet");
  for (Span& span : *batch) *scope->add_spans() = std::move(span);
  size_t n = batch->size();
  absl::Status sent = sink_->Send(request, deadline);
  if (sent.ok()) {
    exported_.fetch_add(n);
    return;
  }
  errors_.fetch_add(1);
  dropped_.fetch_add(n);
  absl::Time now = absl::Now();
  if (now - last_error_log_ >= kErrorLogEvery) {
    last_error_log_ = now;
    FF_LOG(WARNING) << sent.message() << " (" << n
                    << " spans dropped; export errors so far: "
                    << errors_.load() << ")";
  }
}

Span NewSpan(absl::string_view name, const TraceContext& context,
             uint64_t parent_span_id, absl::Time start, absl::Time end) {
  Span span;
  span.set_trace_id(context.TraceIdBytes());
  span.set_span_id(SpanIdBytes(context.span_id));
  if (parent_span_id != 0) span.set_parent_span_id(SpanIdBytes(parent_span_id));
  if (!context.tracestate.empty()) span.set_trace_state(context.tracestate);
  span.set_name(Ascii(name));
  span.set_start_time_unix_nano(
      static_cast<uint64_t>(absl::ToUnixNanos(start)));
  span.set_end_time_unix_nano(
      static_cast<uint64_t>(absl::ToUnixNanos(std::max(start, end))));
  return span;
}

void SetAttribute(Span* span, absl::string_view key, absl::string_view value) {
  SetStringAttribute(span->add_attributes(), key, value);
}

void SetAttribute(Span* span, absl::string_view key, const char* value) {
  SetStringAttribute(span->add_attributes(), key, value);
}

void SetAttribute(Span* span, absl::string_view key, int64_t value) {
  otlp::common::v1::KeyValue* kv = span->add_attributes();
  kv->set_key(std::string(key));
  kv->mutable_value()->set_int_value(value);
}

void SetAttribute(Span* span, absl::string_view key, double value) {
  otlp::common::v1::KeyValue* kv = span->add_attributes();
  kv->set_key(std::string(key));
  kv->mutable_value()->set_double_value(value);
}

void SetAttribute(Span* span, absl::string_view key, bool value) {
  otlp::common::v1::KeyValue* kv = span->add_attributes();
  kv->set_key(std::string(key));
  kv->mutable_value()->set_bool_value(value);
}

void SetError(Span* span, absl::string_view message) {
  span->mutable_status()->set_code(otlp::trace::v1::Status::STATUS_CODE_ERROR);
  span->mutable_status()->set_message(Ascii(message));
}

}  // namespace fetchfleet
