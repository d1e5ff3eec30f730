#include "coordinator/job_trace.h"

#include <memory>

#include "gtest/gtest.h"

namespace fetchfleet::coordinator {
namespace {

constexpr char kClient[] =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// NullSink accepts every export.
class NullSink final : public SpanSink {
 public:
  absl::Status Send(
      const otlp::collector::trace::v1::ExportTraceServiceRequest&,
      absl::Time) override {
    return absl::OkStatus();
  }
};

TEST(JobTraceTest, WithoutContextOrExporterNothingIsStamped) {
  JobTrace trace = JobTrace::Start(TraceSettings(), "", "", absl::Now());
  EXPECT_FALSE(trace.active());
  v1::FetchRequest request;
  trace.Stamp(&request);
  EXPECT_TRUE(request.traceparent().empty());
}

TEST(JobTraceTest, ClientContextIsPropagatedWithoutAnExporter) {
  JobTrace trace =
      JobTrace::Start(TraceSettings(), kClient, "rojo=1", absl::Now());
  ASSERT_TRUE(trace.active());
  EXPECT_FALSE(trace.recording());
  EXPECT_EQ(trace.parent_span_id(), 0x00f067aa0ba902b7u);
  v1::FetchRequest request;
  trace.Stamp(&request);
  absl::StatusOr<TraceContext> sent =
      ParseTraceparent(request.traceparent(), request.tracestate());
  ASSERT_TRUE(sent.ok()) << request.traceparent();
  EXPECT_EQ(sent->TraceIdHex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(sent->span_id, trace.context().span_id);  // the job's span
  EXPECT_NE(sent->span_id, 0x00f067aa0ba902b7u);
  EXPECT_TRUE(sent->sampled);
  EXPECT_EQ(request.tracestate(), "rojo=1");
  // A request's own traceparent wins.
  v1::FetchRequest own;
  own.set_traceparent(
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  trace.Stamp(&own);
  EXPECT_EQ(own.traceparent(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
}

TEST(JobTraceTest, NewTraceSamplesEachRequest) {
  OtlpExporter exporter(OtlpExporter::Options(), std::make_unique<NullSink>());
  TraceSettings settings{.exporter = &exporter, .sample_ratio = 0.25};
  JobTrace trace = JobTrace::Start(settings, "", "", absl::Now());
  ASSERT_TRUE(trace.recording());
  EXPECT_EQ(trace.parent_span_id(), 0u);  // a root
  int sampled = 0;
  for (int i = 0; i < 4000; ++i) {
    v1::FetchRequest request;
    trace.Stamp(&request);
    absl::StatusOr<TraceContext> sent =
        ParseTraceparent(request.traceparent(), "");
    ASSERT_TRUE(sent.ok());
    sampled += sent->sampled ? 1 : 0;
  }
  EXPECT_GT(sampled, 800);
  EXPECT_LT(sampled, 1200);
  // Ratio 0: no new traces at all; an Aggregate call is sampled whole.
  settings.sample_ratio = 0;
  EXPECT_FALSE(JobTrace::Start(settings, "", "", absl::Now()).active());
  settings.sample_ratio = 1;
  EXPECT_TRUE(
      JobTrace::Start(settings, "", "", absl::Now(), false).recording());
  // An unsampled parent is honoured: propagated, not recorded.
  JobTrace unsampled = JobTrace::Start(
      settings, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "",
      absl::Now());
  EXPECT_TRUE(unsampled.active());
  EXPECT_FALSE(unsampled.recording());
  exporter.Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace fetchfleet::coordinator
