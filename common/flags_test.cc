#include "common/flags.h"

#include <cstdlib>

#include "gtest/gtest.h"

namespace fetchfleet {
namespace {

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return argv;
}

TEST(FlagSetTest, KebabCaseFlagsBothSpellingsAndPositionals) {
  std::string listen = "0.0.0.0:7070";
  int64_t inflight = 512;
  bool verbose = false;
  absl::Duration timeout = absl::Seconds(10);
  FlagSet flags("usage", "");
  flags.String("listen", &listen, "");
  flags.Int("max-inflight", &inflight, "");
  flags.Bool("verbose", &verbose, "");
  flags.Duration("timeout", &timeout, "");
  std::vector<std::string> args = {"prog",      "--listen=127.0.0.1:0",
                                   "file.txt",  "--max-inflight",
                                   "64",        "--verbose",
                                   "--timeout", "250ms"};
  auto argv = Argv(args);
  auto positional = flags.Parse(argv.size(), argv.data());
  ASSERT_TRUE(positional.ok()) << positional.status();
  EXPECT_EQ(*positional, std::vector<std::string>{"file.txt"});
  EXPECT_EQ(listen, "127.0.0.1:0");
  EXPECT_EQ(inflight, 64);
  EXPECT_TRUE(verbose);
  EXPECT_EQ(timeout, absl::Milliseconds(250));
}

TEST(FlagSetTest, EnvironmentIsReadAndCommandLineWins) {
  ::setenv("FFTEST_MAX_INFLIGHT", "7", 1);
  ::setenv("FFTEST_NAME", "from-env", 1);
  ::setenv("FFTEST_ALLOW_CIDR", "10.0.0.0/8, 127.0.0.0/8", 1);
  int64_t inflight = 512;
  std::string name;
  std::vector<std::string> cidrs;
  FlagSet flags("usage", "FFTEST_");
  flags.Int("max-inflight", &inflight, "");
  flags.String("name", &name, "");
  flags.StringList("allow-cidr", &cidrs, "");
  std::vector<std::string> args = {"prog", "--name", "from-flag"};
  auto argv = Argv(args);
  ASSERT_TRUE(flags.Parse(argv.size(), argv.data()).ok());
  EXPECT_EQ(inflight, 7);
  EXPECT_EQ(name, "from-flag");
  EXPECT_EQ(cidrs, (std::vector<std::string>{"10.0.0.0/8", "127.0.0.0/8"}));

  std::vector<std::string> args2 = {"prog", "--allow-cidr", "1.2.3.0/24",
                                    "--allow-cidr=::1"};
  auto argv2 = Argv(args2);
  ASSERT_TRUE(flags.Parse(argv2.size(), argv2.data()).ok());
  EXPECT_EQ(cidrs, (std::vector<std::string>{"1.2.3.0/24", "::1"}));
}

TEST(FlagSetTest, ErrorsNameTheFlag) {
  int64_t n = 0;
  FlagSet flags("usage", "");
  flags.Int("count", &n, "");
  std::vector<std::string> bad_value = {"prog", "--count", "many"};
  auto argv = Argv(bad_value);
  auto status = flags.Parse(argv.size(), argv.data()).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(status.message().find("--count"), absl::string_view::npos);

  std::vector<std::string> unknown = {"prog", "--nope"};
  auto argv2 = Argv(unknown);
  status = flags.Parse(argv2.size(), argv2.data()).status();
  EXPECT_NE(status.message().find("--nope"), absl::string_view::npos);

  std::vector<std::string> missing = {"prog", "--count"};
  auto argv3 = Argv(missing);
  EXPECT_FALSE(flags.Parse(argv3.size(), argv3.data()).ok());
}

TEST(FlagSetTest, DoublesAreFiniteAndABadOneLeavesTheDefault) {
  double ratio = 0.5;
  FlagSet flags("usage", "");
  flags.Double("ratio", &ratio, "");
  for (const char* text : {"nan", "inf", "-inf", "1e999"}) {
    std::vector<std::string> args = {"prog", "--ratio", text};
    auto argv = Argv(args);
    EXPECT_FALSE(flags.Parse(argv.size(), argv.data()).ok()) << text;
    EXPECT_EQ(ratio, 0.5) << text;
  }
  std::vector<std::string> good = {"prog", "--ratio=0.25"};
  auto argv = Argv(good);
  ASSERT_TRUE(flags.Parse(argv.size(), argv.data()).ok());
  EXPECT_EQ(ratio, 0.25);
}

}  // namespace
}  // namespace fetchfleet
