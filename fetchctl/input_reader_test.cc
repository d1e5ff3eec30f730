#include "fetchctl/input_reader.h"

#include "common/request_parser.h"
#include "gtest/gtest.h"
#include "tests/testing/subprocess.h"

namespace fetchfleet::fetchctl {
namespace {

TEST(InputReaderTest, SplitsLinesInBatches) {
  std::string path = testing::WriteTempFile("a\nb\r\n\nc");
  auto reader = InputReader::Open(path);
  ASSERT_TRUE(reader.ok());
  std::vector<std::string> lines;
  ASSERT_TRUE((*reader)->NextBatch(2, 1 << 20, &lines));
  EXPECT_EQ(lines, (std::vector<std::string>{"a", "b\r"}));
  ASSERT_TRUE((*reader)->NextBatch(10, 1 << 20, &lines));
  EXPECT_EQ(lines, (std::vector<std::string>{"", "c"}));
  EXPECT_FALSE((*reader)->NextBatch(10, 1 << 20, &lines));
}

TEST(InputReaderTest, AReadErrorIsNotAnEndOfFile) {
  // fopen opens a directory; reading it fails (EISDIR).
  auto reader = InputReader::Open("/tmp");
  ASSERT_TRUE(reader.ok());
  std::vector<std::string> lines;
  EXPECT_FALSE((*reader)->NextBatch(10, 1 << 20, &lines));
  EXPECT_EQ((*reader)->status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE((*reader)->status().message().find("reading /tmp: Is a directory"),
            std::string::npos)
      << (*reader)->status();
}

TEST(InputReaderTest, HugeLineIsCutNotLoadedAndTheNextLineSurvives) {
  std::string huge(kMaxLineBytes * 3, 'a');
  std::string path = testing::WriteTempFile(huge + "\nhttp://next.example/\n");
  auto reader = InputReader::Open(path);
  ASSERT_TRUE(reader.ok());
  std::vector<std::string> lines;
  ASSERT_TRUE((*reader)->NextBatch(10, 100 << 20, &lines));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].size(), kMaxLineBytes + 1);
  EXPECT_EQ(lines[1], "http://next.example/");
}

TEST(InputReaderTest, MissingFileIsAClearError) {
  auto reader = InputReader::Open("/nonexistent/jobs.txt");
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("/nonexistent/jobs.txt"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace fetchfleet::fetchctl
