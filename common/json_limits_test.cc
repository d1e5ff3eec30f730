#include "common/json_limits.h"

#include <string>

#include "gtest/gtest.h"

namespace fetchfleet {
namespace {

std::string Nested(int depth, char open, char close) {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(JsonLimitsTest, AcceptsUpToTheDepth) {
  EXPECT_TRUE(CheckJsonShape(Nested(kMaxJsonDepth, '[', ']'), 1 << 20).ok());
  EXPECT_TRUE(CheckJsonShape(R"({"a": [1, {"b": "[[[["}]})", 1 << 20).ok());
}

TEST(JsonLimitsTest, RefusesDeeperNesting) {
  absl::Status deep =
      CheckJsonShape(Nested(kMaxJsonDepth + 1, '[', ']'), 1 << 20);
  EXPECT_EQ(deep.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(deep.message().find("deeper than 64"), absl::string_view::npos)
      << deep.message();
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  EXPECT_FALSE(CheckJsonShape(objects, 1 << 20).ok());
}

TEST(JsonLimitsTest, BracketsInStringsDoNotCount) {
  std::string text =
      "[\"" + std::string(1000, '[') + "\\\"" + std::string(1000, '{') + "\"]";
  EXPECT_TRUE(CheckJsonShape(text, 1 << 20).ok());
  // An escaped backslash ends before the quote: the string closes there.
  EXPECT_FALSE(
      CheckJsonShape("[\"\\\\\"" + Nested(70, '[', ']') + "]", 1 << 20).ok());
}

TEST(JsonLimitsTest, RefusesOverSize) {
  absl::Status big = CheckJsonShape(std::string(101, ' '), 100);
  EXPECT_EQ(big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(big.message().find("limit is 100"), absl::string_view::npos);
}

}  // namespace
}  // namespace fetchfleet
