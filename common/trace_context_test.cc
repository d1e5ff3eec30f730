#include "common/trace_context.h"

#include <string>

#include "gtest/gtest.h"

namespace fetchfleet {
namespace {

constexpr char kGood[] =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceContextTest, ParsesTheSpecExample) {
  absl::StatusOr<TraceContext> c =
      ParseTraceparent(kGood, "rojo=00f067aa0ba902b7");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->TraceIdHex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(c->span_id, 0x00f067aa0ba902b7u);
  EXPECT_TRUE(c->sampled);
  EXPECT_EQ(c->tracestate, "rojo=00f067aa0ba902b7");
  EXPECT_EQ(FormatTraceparent(*c), kGood);
}

TEST(TraceContextTest, FlagsOtherThanSampledAreIgnored) {
  absl::StatusOr<TraceContext> c = ParseTraceparent(
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->sampled);
  c = ParseTraceparent(
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", "");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->sampled);
}

TEST(TraceContextTest, LaterVersionIsReadByItsFirstFields) {
  std::string v = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  EXPECT_TRUE(ParseTraceparent(v, "").ok());
  EXPECT_TRUE(ParseTraceparent(v + "-what-the-future-holds", "").ok());
  EXPECT_FALSE(ParseTraceparent(v + "x", "").ok());
}

TEST(TraceContextTest, RejectsMalformedValues) {
  const char* bad[] = {
      "",
      "00",
      // all-zero ids
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      // version ff, upper-case hex, non-hex
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
      // wrong separators, lengths; version 00 with a tail
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
      " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
  };
  for (const char* v : bad) {
    absl::StatusOr<TraceContext> c = ParseTraceparent(v, "");
    EXPECT_FALSE(c.ok()) << "accepted " << v;
    if (!c.ok()) {
      EXPECT_NE(c.status().message().find("traceparent"), std::string::npos);
    }
  }
}

TEST(TraceContextTest, TracestateLimits) {
  EXPECT_TRUE(ValidateTracestate("a=1,b=2, c=3").ok());
  EXPECT_TRUE(ValidateTracestate("a=1,,b=2").ok());  // empty members allowed
  EXPECT_FALSE(ValidateTracestate("novalue").ok());
  EXPECT_FALSE(ValidateTracestate("=x").ok());
  EXPECT_FALSE(ValidateTracestate("a=\n").ok());
  EXPECT_FALSE(
      ValidateTracestate(std::string(kMaxTracestateBytes, 'a') + "=1").ok());
  std::string members;
  for (int i = 0; i < 33; ++i) members += "k" + std::to_string(i) + "=v,";
  EXPECT_FALSE(ValidateTracestate(members).ok());
  // A bad tracestate fails the parse of an otherwise good pair.
  EXPECT_FALSE(ParseTraceparent(kGood, "bad\x01").ok());
}

TEST(TraceContextTest, NewIdsAreValidAndChildrenKeepTheTrace) {
  TraceContext root = NewRootContext(true);
  EXPECT_TRUE(root.valid());
  EXPECT_TRUE(root.sampled);
  TraceContext child = ChildContext(root);
  EXPECT_EQ(child.trace_hi, root.trace_hi);
  EXPECT_EQ(child.trace_lo, root.trace_lo);
  EXPECT_NE(child.span_id, root.span_id);
  EXPECT_TRUE(child.sampled);
  absl::StatusOr<TraceContext> back =
      ParseTraceparent(FormatTraceparent(child), "");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->span_id, child.span_id);
  EXPECT_EQ(back->TraceIdBytes().size(), 16u);
  EXPECT_EQ(SpanIdBytes(child.span_id).size(), 8u);
  EXPECT_EQ(SpanIdBytes(0), "");
}

TEST(TraceContextTest, SampleRatioBounds) {
  int hits = 0;
  for (int i = 0; i < 10000; ++i) hits += SampleRatio(0.1) ? 1 : 0;
  EXPECT_GT(hits, 700);
  EXPECT_LT(hits, 1300);
  EXPECT_FALSE(SampleRatio(0));
  EXPECT_TRUE(SampleRatio(1));
}

}  // namespace
}  // namespace fetchfleet
