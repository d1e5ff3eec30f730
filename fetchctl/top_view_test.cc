#include "fetchctl/top_view.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace fetchfleet::fetchctl {
namespace {

v1::WorkerInfo Worker(const std::string& name, uint64_t done,
                      uint64_t failed = 0) {
  v1::WorkerInfo w;
  w.set_name(name);
  w.set_done(done);
  w.set_failed(failed);
  w.set_in_flight(7);
  return w;
}

v1::KeyLimit Key(const std::string& key, double limit, double achieved,
                 uint64_t waiting) {
  v1::KeyLimit k;
  k.set_key(key);
  k.set_per_second(limit);
  k.set_burst(1);
  k.set_achieved_per_second(achieved);
  k.set_waiting(waiting);
  return k;
}

v1::JobStatus Job(const std::string& id, uint64_t done, uint64_t total) {
  v1::JobStatus j;
  j.set_job_id(id);
  j.set_state(v1::JOB_RUNNING);
  j.set_done(done);
  j.set_total(total);
  j.set_input_closed(true);
  j.set_owner("alice");
  return j;
}

// Lines starting with `prefix`.
std::vector<std::string> Starting(const std::vector<std::string>& lines,
                                  const std::string& prefix) {
  std::vector<std::string> out;
  for (const std::string& line : lines)
    if (absl::StartsWith(line, prefix)) out.push_back(line);
  return out;
}

size_t IndexOf(const std::vector<std::string>& lines, const std::string& text) {
  for (size_t i = 0; i < lines.size(); ++i)
    if (absl::StrContains(lines[i], text)) return i;
  return lines.size();
}

// Two snapshots 2 s apart.
class TopViewTest : public ::testing::Test {
 protected:
  TopViewTest() {
    before_.taken = absl::FromUnixSeconds(1000);
    now_.taken = absl::FromUnixSeconds(1002);
    frame_.coordinator = "localhost:7070";
    frame_.clock = "12:00:00";
    frame_.previous = &before_;
    frame_.current = &now_;
  }
  TopSnapshot before_, now_;
  TopFrame frame_;
};

TEST(FormatEtaTest, SecondsMinutesHoursDays) {
  EXPECT_EQ(FormatEta(0), "0s");
  EXPECT_EQ(FormatEta(0.2), "1s");  // rounded up: not done yet
  EXPECT_EQ(FormatEta(45), "45s");
  EXPECT_EQ(FormatEta(59.5), "1m00s");
  EXPECT_EQ(FormatEta(185), "3m05s");
  EXPECT_EQ(FormatEta(2 * 3600 + 10 * 60), "2h10m");
  EXPECT_EQ(FormatEta(3 * 86400 + 4 * 3600 + 59), "3d04h");
  EXPECT_EQ(FormatEta(100 * 86400.0), ">99d");
  EXPECT_EQ(FormatEta(-1), "-");
  EXPECT_EQ(FormatEta(1.0 / 0.0), "-");
  EXPECT_EQ(FormatEta(0.0 / 0.0), "-");
}

TEST(FitCellTest, CutsWithAMark) {
  EXPECT_EQ(FitCell("worker-1", 10), "worker-1");
  EXPECT_EQ(FitCell("worker-1", 8), "worker-1");
  EXPECT_EQ(FitCell("worker-123", 8), "worker-~");
  EXPECT_EQ(FitCell("anything", 0), "anything");  // unbounded
}

TEST(RatePerSecondTest, NeedsTimeAndAForwardCounter) {
  EXPECT_DOUBLE_EQ(RatePerSecond(10, 30, 2), 10);
  EXPECT_LT(RatePerSecond(10, 30, 0), 0);
  EXPECT_LT(RatePerSecond(30, 10, 2), 0);  // restarted: no rate
}

TEST_F(TopViewTest, WorkerRatesComeFromTheDifferenceOfTwoSnapshots) {
  before_.workers = {Worker("w-1", 100), Worker("w-2", 50)};
  now_.workers = {Worker("w-2", 50, 3), Worker("w-1", 140, 1),
                  Worker("w-3", 9)};
  std::vector<std::string> lines = RenderTop(frame_, 0, 0);
  EXPECT_NE(IndexOf(lines, "WORKERS (3)"), lines.size());
  std::vector<std::string> w1 = Starting(lines, "w-1 ");
  ASSERT_EQ(w1.size(), 1u);
  // 40 done in 2 s; 140 done, 1 error.
  EXPECT_NE(w1[0].find(" 20.0 "), std::string::npos) << w1[0];
  EXPECT_NE(w1[0].find(" 140 "), std::string::npos) << w1[0];
  EXPECT_NE(w1[0].find(" 1 "), std::string::npos) << w1[0];
  EXPECT_NE(Starting(lines, "w-2 ")[0].find(" 0.0 "), std::string::npos);
  // A worker new since the last snapshot has no rate yet.
  EXPECT_NE(Starting(lines, "w-3 ")[0].find(" - "), std::string::npos);
  // Sorted by name.
  EXPECT_LT(IndexOf(lines, "w-1 "), IndexOf(lines, "w-2 "));
  EXPECT_LT(IndexOf(lines, "w-2 "), IndexOf(lines, "w-3 "));
}

TEST_F(TopViewTest, TheFirstSnapshotHasNoRates) {
  now_.workers = {Worker("w-1", 140)};
  frame_.previous = nullptr;
  std::vector<std::string> lines = RenderTop(frame_, 0, 0);
  EXPECT_EQ(lines[1], "(rates from the next refresh)");
  EXPECT_NE(Starting(lines, "w-1 ")[0].find(" - "), std::string::npos);
}

TEST_F(TopViewTest, RateKeysBusiestFirstWithTheirLimit) {
  now_.limits.add_limits()->CopyFrom(Key("idle.example", 100, 0, 0));
  now_.limits.add_limits()->CopyFrom(Key("fast.example", 50, 49.5, 0));
  now_.limits.add_limits()->CopyFrom(Key("queued.example", 2, 2, 40));
  v1::KeyLimit paused = Key("paused.example", 0, 0, 3);
  paused.set_paused_ms(4500);
  now_.limits.add_limits()->CopyFrom(paused);
  std::vector<std::string> lines = RenderTop(frame_, 0, 0);
  size_t queued = IndexOf(lines, "queued.example");
  size_t pause = IndexOf(lines, "paused.example");
  size_t fast = IndexOf(lines, "fast.example");
  size_t idle = IndexOf(lines, "idle.example");
  EXPECT_LT(queued, pause);  // waiting 40, then 3
  EXPECT_LT(pause, fast);    // then by achieved rate
  EXPECT_LT(fast, idle);
  ASSERT_LT(idle, lines.size());
  EXPECT_NE(lines[fast].find("49.5"), std::string::npos) << lines[fast];
  EXPECT_NE(lines[fast].find("50/s"), std::string::npos) << lines[fast];
  EXPECT_NE(lines[fast].find("99%"), std::string::npos) << lines[fast];
  EXPECT_NE(lines[pause].find("none"), std::string::npos) << lines[pause];
  EXPECT_NE(lines[pause].find("4.5s"), std::string::npos) << lines[pause];
}

TEST_F(TopViewTest, OnlyBreakersNotClosedAreListed) {
  v1::BreakerInfo closed, open, half;
  closed.set_key("fine.example");
  open.set_key("down.example");
  open.set_state(v1::BREAKER_OPEN);
  open.set_calls(20);
  open.set_failures(15);
  open.set_next_probe_ms(2500);
  open.set_trips(2);
  half.set_key("probe.example");
  half.set_state(v1::BREAKER_HALF_OPEN);
  now_.breakers = {closed, half, open};
  std::vector<std::string> lines = RenderTop(frame_, 0, 0);
  EXPECT_NE(IndexOf(lines, "BREAKERS NOT CLOSED (2)"), lines.size());
  EXPECT_EQ(IndexOf(lines, "fine.example"), lines.size());
  size_t down = IndexOf(lines, "down.example");
  ASSERT_LT(down, lines.size());
  EXPECT_LT(down, IndexOf(lines, "probe.example"));
  EXPECT_NE(lines[down].find("75%"), std::string::npos) << lines[down];
  EXPECT_NE(lines[down].find("2.5s"), std::string::npos) << lines[down];
  EXPECT_NE(lines[IndexOf(lines, "probe.example")].find("probing"),
            std::string::npos);

  now_.breakers = {closed};
  lines = RenderTop(frame_, 0, 0);
  EXPECT_NE(IndexOf(lines, "BREAKERS NOT CLOSED (0): all closed"),
            lines.size());
}

TEST_F(TopViewTest, RunningJobsWithProgressRateAndEta) {
  before_.jobs = {Job("job-a", 100, 1000)};
  v1::JobStatus done = Job("job-done", 5, 5);
  done.set_state(v1::JOB_DONE);
  v1::JobStatus open = Job("job-b", 10, 10);
  open.set_input_closed(false);
  before_.jobs.push_back(Job("job-b", 0, 10));
  now_.jobs = {Job("job-a", 160, 1000), done, open};
  std::vector<std::string> lines = RenderTop(frame_, 0, 0);
  EXPECT_NE(IndexOf(lines, "RUNNING JOBS (2)"), lines.size());
  EXPECT_EQ(IndexOf(lines, "job-done"), lines.size());
  std::string a = lines[IndexOf(lines, "job-a")];
  // 60 in 2 s = 30 req/s; 840 left: 28 s.
  EXPECT_NE(a.find("160/1000"), std::string::npos) << a;
  EXPECT_NE(a.find("16%"), std::string::npos) << a;
  EXPECT_NE(a.find("30.0"), std::string::npos) << a;
  EXPECT_NE(a.find("28s"), std::string::npos) << a;
  EXPECT_NE(a.find("alice"), std::string::npos) << a;
  // Input still arriving: the total and the ETA are floors.
  std::string b = lines[IndexOf(lines, "job-b")];
  EXPECT_NE(b.find("10/10+"), std::string::npos) << b;
  EXPECT_NE(b.find(" 0s+"), std::string::npos) << b;
}

TEST_F(TopViewTest, EveryLineFitsTheWidthAndLongNamesAreCut) {
  std::string long_name(200, 'n');
  now_.workers = {Worker(long_name, 1), Worker("w-2", 2)};
  now_.limits.add_limits()->CopyFrom(Key(std::string(100, 'k'), 5, 1, 0));
  now_.jobs = {Job("job-a", 1, 2)};
  for (int width : {40, 80, 120}) {
    std::vector<std::string> lines = RenderTop(frame_, width, 0);
    for (const std::string& line : lines)
      EXPECT_LE(static_cast<int>(line.size()), width) << line;
    std::vector<std::string> cut = Starting(lines, "nnnn");
    ASSERT_EQ(cut.size(), 1u) << width;
    EXPECT_NE(cut[0].find("~"), std::string::npos);
  }
  // The columns stay aligned under their headers when the name is cut.
  std::vector<std::string> lines = RenderTop(frame_, 120, 0);
  std::string header = lines[IndexOf(lines, "IN-FLIGHT")];
  std::string row = Starting(lines, "nnnn")[0];
  size_t column_end =
      header.find("IN-FLIGHT") + std::string("IN-FLIGHT").size();
  EXPECT_EQ(row[column_end - 1], '7') << header << "\n" << row;
  // Unbounded (the plain snapshot): nothing is cut.
  lines = RenderTop(frame_, 0, 0);
  EXPECT_EQ(Starting(lines, long_name).size(), 1u);
}

TEST_F(TopViewTest, SectionsShareTheHeightAndSayWhatDidNotFit) {
  for (int i = 0; i < 50; ++i)
    now_.workers.push_back(Worker(absl::StrCat("w-", 100 + i), 1));
  for (int i = 0; i < 50; ++i)
    now_.limits.add_limits()->CopyFrom(
        Key(absl::StrCat("key-", 100 + i), 10, 1, 50 - i));
  now_.jobs = {Job("job-a", 1, 2)};
  std::vector<std::string> lines = RenderTop(frame_, 100, 40);
  EXPECT_EQ(lines.size(), 40u);
  // Both long sections are cut, and say by how much; the job still shows.
  EXPECT_NE(IndexOf(lines, "job-a"), lines.size());
  int shown_workers = Starting(lines, "w-1").size();
  int shown_keys = Starting(lines, "key-1").size();
  EXPECT_GT(shown_workers, 3);
  EXPECT_GT(shown_keys, 3);
  EXPECT_NE(IndexOf(lines, absl::StrCat("... ", 50 - shown_workers, " more")),
            lines.size());
  EXPECT_NE(IndexOf(lines, absl::StrCat("... ", 50 - shown_keys, " more")),
            lines.size());
  // Short of room, the blank lines between sections went first (the one
  // left is the status line).
  EXPECT_EQ(std::count(lines.begin(), lines.end(), ""), 1) << lines[1];
  // The busiest keys are the ones kept.
  EXPECT_NE(IndexOf(lines, "key-100 "), lines.size());
  EXPECT_EQ(IndexOf(lines, "key-149 "), lines.size());

  // With room for all, a blank line before each section.
  now_.workers.resize(2);
  now_.limits.mutable_limits()->DeleteSubrange(2, 48);
  lines = RenderTop(frame_, 100, 40);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), ""), 5);
  EXPECT_EQ(IndexOf(lines, " more"), lines.size());

  // A tiny terminal still gets at most its height.
  EXPECT_EQ(RenderTop(frame_, 20, 5).size(), 5u);
}

TEST_F(TopViewTest, AnErrorIsShownAboveTheLastGoodData) {
  now_.workers = {Worker("w-1", 1)};
  frame_.error = "cannot reach the coordinator (retrying every 1s)";
  frame_.keys = true;
  std::vector<std::string> lines = RenderTop(frame_, 80, 24);
  EXPECT_NE(lines[0].find("q: quit"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].size(), 80u);
  EXPECT_EQ(lines[1], "error: " + frame_.error);
  EXPECT_EQ(Starting(lines, "w-1 ").size(), 1u);
  // Nothing read yet: only the title and the status line.
  frame_.current = frame_.previous = nullptr;
  EXPECT_EQ(RenderTop(frame_, 80, 24).size(), 2u);
}

TEST_F(TopViewTest, NoByteOfANameReachesTheTerminalAsAControl) {
  now_.workers = {Worker("evil\x1b[2J\x07name", 1)};
  for (const std::string& line : RenderTop(frame_, 0, 0)) {
    for (char c : line) {
      EXPECT_GE(c, 0x20) << line;
      EXPECT_LE(c, 0x7e) << line;
    }
  }
}

}  // namespace
}  // namespace fetchfleet::fetchctl
