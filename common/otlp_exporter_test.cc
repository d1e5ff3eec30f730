#include "common/otlp_exporter.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <vector>

#include "absl/synchronization/notification.h"
#include "common/trace_context.h"
#include "gtest/gtest.h"

namespace fetchfleet {
namespace {

using otlp::collector::trace::v1::ExportTraceServiceRequest;

// HeldSink: the first Send waits until the test releases it, so the queue
// fills behind it; it keeps what it was sent.
class HeldSink final : public SpanSink {
 public:
  absl::Status Send(const ExportTraceServiceRequest& request,
                    absl::Time /*deadline*/) override {
    if (!entered_.HasBeenNotified()) entered_.Notify();
    release_.WaitForNotification();
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(request);
    return absl::OkStatus();
  }
  absl::Notification entered_;
  absl::Notification release_;
  std::mutex mu_;
  std::vector<ExportTraceServiceRequest> requests_;
};

otlp::trace::v1::Span Span(int i) {
  TraceContext context = NewRootContext(true);
  absl::Time t = absl::Now();
  return NewSpan("span " + std::to_string(i), context, 0, t, t);
}

TEST(OtlpExporterTest, FullQueueDropsAndCounts) {
  auto sink = std::make_unique<HeldSink>();
  HeldSink* held = sink.get();
  OtlpExporter::Options options;
  options.service_name = "test";
  options.service_instance_id = "one";
  options.queue_spans = 8;
  options.batch_spans = 4;
  options.batch_interval = absl::Milliseconds(10);
  OtlpExporter exporter(options, std::move(sink));
  // One span goes out and holds the exporter's thread in Send.
  exporter.Export(Span(0));
  held->entered_.WaitForNotification();
  // The queue takes 8 more; the 5 after them are dropped, not queued.
  for (int i = 1; i <= 13; ++i) exporter.Export(Span(i));
  EXPECT_EQ(exporter.spans_dropped(), 5u);
  EXPECT_EQ(exporter.spans_exported(), 0u);
  held->release_.Notify();
  exporter.Shutdown(absl::Seconds(10));
  EXPECT_EQ(exporter.spans_exported(), 9u);
  EXPECT_EQ(exporter.spans_dropped(), 5u);
  EXPECT_EQ(exporter.export_errors(), 0u);
  // Batches hold at most batch_spans, each with the resource.
  std::lock_guard<std::mutex> lock(held->mu_);
  size_t spans = 0;
  for (const ExportTraceServiceRequest& r : held->requests_) {
    ASSERT_EQ(r.resource_spans_size(), 1);
    const auto& resource = r.resource_spans(0).resource();
    ASSERT_GE(resource.attributes_size(), 2);
    EXPECT_EQ(resource.attributes(0).key(), "service.name");
    EXPECT_EQ(resource.attributes(0).value().string_value(), "test");
    int n = r.resource_spans(0).scope_spans(0).spans_size();
    EXPECT_LE(n, 4);
    spans += n;
  }
  EXPECT_EQ(spans, 9u);
  // After shutdown spans are dropped.
  exporter.Export(Span(99));
  EXPECT_EQ(exporter.spans_dropped(), 6u);
}

// FailingSink refuses every export.
class FailingSink final : public SpanSink {
 public:
  absl::Status Send(const ExportTraceServiceRequest&, absl::Time) override {
    return absl::UnavailableError("collector down");
  }
};

TEST(OtlpExporterTest, FailedExportsCountErrorsAndDrops) {
  OtlpExporter::Options options;
  options.batch_spans = 2;
  OtlpExporter exporter(options, std::make_unique<FailingSink>());
  for (int i = 0; i < 4; ++i) exporter.Export(Span(i));
  exporter.Shutdown(absl::Seconds(10));
  EXPECT_EQ(exporter.spans_exported(), 0u);
  EXPECT_EQ(exporter.spans_dropped(), 4u);
  EXPECT_GE(exporter.export_errors(), 1u);
}

// UnusedPort: a loopback port the kernel picked and nothing listens on.
int UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return -1;
  }
  close(fd);
  return ntohs(addr.sin_port);
}

TEST(OtlpExporterTest, GrpcToNowhereFailsWithinItsDeadline) {
  // Nothing listens there: the export fails, the shutdown deadline holds.
  int port = UnusedPort();
  ASSERT_GT(port, 0);
  OtlpExporter::Options options;
  OtlpExporter exporter(options,
                        NewGrpcSpanSink("127.0.0.1:" + std::to_string(port)));
  exporter.Export(Span(0));
  absl::Time start = absl::Now();
  exporter.Shutdown(absl::Seconds(2));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(exporter.spans_exported(), 0u);
  EXPECT_EQ(exporter.spans_dropped(), 1u);
}

}  // namespace
}  // namespace fetchfleet
