#include "fetchctl/top_view.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/rate_limiter.h"

namespace fetchfleet::fetchctl {
namespace {

// Column: one table column. The first column of a table takes the width the
// others leave (at least kMinFlex); a column of width 0 is the last one and
// takes what is left of the line, left-aligned.
struct Column {
  const char* header;
  int width;
  bool left = false;
};

constexpr int kMinFlex = 8;

using Row = std::vector<std::string>;

std::string Pad(const std::string& text, int width, bool left) {
  std::string cell = FitCell(text, width);
  std::string fill(width - static_cast<int>(cell.size()), ' ');
  return left ? cell + fill : fill + cell;
}

// Table lays out a header line and one line per row.
std::vector<std::string> Table(const std::vector<Column>& columns,
                               const std::vector<Row>& rows, int width) {
  int flex = static_cast<int>(std::string(columns[0].header).size());
  for (const Row& row : rows) flex = std::max<int>(flex, row[0].size());
  if (width > 0) {
    int fixed = 0;
    for (size_t c = 1; c < columns.size(); ++c)
      fixed += 1 + (columns[c].width > 0 ? columns[c].width : 0);
    flex = std::min(flex, std::max(kMinFlex, width - fixed));
  }
  auto line = [&](const Row& cells) {
    std::string out = Pad(cells[0], flex, true);
    for (size_t c = 1; c < columns.size(); ++c) {
      absl::StrAppend(&out, " ",
                      columns[c].width > 0
                          ? Pad(cells[c], columns[c].width, columns[c].left)
                          : cells[c]);
    }
    // Trailing blanks would only overwrite what the clear does anyway.
    out.erase(out.find_last_not_of(' ') + 1);
    return out;
  };
  std::vector<std::string> lines;
  Row header;
  for (const Column& column : columns) header.push_back(column.header);
  lines.push_back(line(header));
  for (const Row& row : rows) lines.push_back(line(row));
  return lines;
}

// Section: a titled table; `lines` are the header and the rows.
struct Section {
  std::string title;
  std::vector<std::string> lines;  // empty: nothing to list
  std::string none;                // what the title says when empty
};

std::string Count(uint64_t n) { return absl::StrCat(n); }

std::string Rate(double per_second) {
  if (per_second < 0) return "-";
  return absl::StrFormat("%.1f", per_second);
}

double Seconds(const TopFrame& frame) {
  if (frame.previous == nullptr || frame.current == nullptr) return 0;
  return absl::ToDoubleSeconds(frame.current->taken - frame.previous->taken);
}

std::string WorkerState(const v1::WorkerInfo& w, int64_t now_ms) {
  if (w.ejected()) {
    return absl::StrFormat(
        "ejected %.0fs: %s",
        std::max<int64_t>(w.ejected_until_unix_ms() - now_ms, 0) / 1000.0,
        w.ejected_reason());
  }
  if (w.draining()) return "draining";
  return w.ejected_reason().empty() ? "ok" : w.ejected_reason();
}

Section Workers(const TopFrame& frame, int width) {
  const TopSnapshot& now = *frame.current;
  std::map<std::string, uint64_t> done_before;
  if (frame.previous != nullptr)
    for (const v1::WorkerInfo& w : frame.previous->workers)
      done_before[w.name()] = w.done();
  std::vector<v1::WorkerInfo> workers = now.workers;
  std::sort(workers.begin(), workers.end(),
            [](const v1::WorkerInfo& a, const v1::WorkerInfo& b) {
              return a.name() < b.name();
            });
  double seconds = Seconds(frame);
  std::vector<Row> rows;
  size_t ejected = 0;
  for (const v1::WorkerInfo& w : workers) {
    auto before = done_before.find(w.name());
    double rate = before == done_before.end()
                      ? -1
                      : RatePerSecond(before->second, w.done(), seconds);
    ejected += w.ejected() ? 1 : 0;
    rows.push_back({w.name(), Count(w.in_flight()), Rate(rate), Count(w.done()),
                    Count(w.failed()), WorkerState(w, frame.now_unix_ms)});
  }
  Section section;
  section.title = absl::StrCat("WORKERS (", workers.size(), ")");
  if (ejected > 0) absl::StrAppend(&section.title, ", ", ejected, " ejected");
  section.none = "none connected";
  if (!rows.empty()) {
    section.lines = Table({{"NAME", 0, true},
                           {"IN-FLIGHT", 9},
                           {"REQ/S", 8},
                           {"DONE", 10},
                           {"ERRORS", 8},
                           {"STATE", 0, true}},
                          rows, width);
  }
  return section;
}

Section RateKeys(const TopFrame& frame, int width) {
  std::vector<v1::KeyLimit> keys(frame.current->limits.limits().begin(),
                                 frame.current->limits.limits().end());
  // Busiest first: most requests held back, then the highest achieved rate.
  std::sort(
      keys.begin(), keys.end(),
      [](const v1::KeyLimit& a, const v1::KeyLimit& b) {
        return std::make_tuple(b.waiting(), b.achieved_per_second(), a.key()) <
               std::make_tuple(a.waiting(), a.achieved_per_second(), b.key());
      });
  std::vector<Row> rows;
  for (const v1::KeyLimit& k : keys) {
    bool limited = k.per_second() > 0;
    rows.push_back(
        {k.key(), Rate(k.achieved_per_second()),
         limited ? FormatRate(k.per_second()) : "none",
         limited ? absl::StrFormat(
                       "%.0f%%", 100 * k.achieved_per_second() / k.per_second())
                 : "-",
         Count(k.waiting()),
         k.paused_ms() > 0 ? absl::StrFormat("%.1fs", k.paused_ms() / 1000.0)
                           : "-"});
  }
  Section section;
  section.title = absl::StrCat("RATE KEYS (", keys.size(), ")");
  section.none = "no limits or pauses";
  if (!rows.empty()) {
    section.lines = Table({{"KEY", 0, true},
                           {"ACHIEVED/S", 10},
                           {"LIMIT", 10},
                           {"USE", 5},
                           {"WAITING", 8},
                           {"PAUSE", 7}},
                          rows, width);
  }
  return section;
}

Section Breakers(const TopFrame& frame, int width) {
  std::vector<v1::BreakerInfo> open;
  for (const v1::BreakerInfo& b : frame.current->breakers)
    if (b.state() != v1::BREAKER_CLOSED) open.push_back(b);
  std::sort(open.begin(), open.end(),
            [](const v1::BreakerInfo& a, const v1::BreakerInfo& b) {
              // Open before half-open, then by key.
              return std::make_tuple(a.state(), a.key()) <
                     std::make_tuple(b.state(), b.key());
            });
  std::vector<Row> rows;
  for (const v1::BreakerInfo& b : open) {
    bool is_open = b.state() == v1::BREAKER_OPEN;
    rows.push_back(
        {b.key(), is_open ? "open" : "half-open",
         b.calls() > 0
             ? absl::StrFormat("%.0f%%", 100.0 * b.failures() / b.calls())
             : "-",
         Count(b.calls()),
         is_open ? absl::StrFormat("%.1fs", b.next_probe_ms() / 1000.0)
                 : "probing",
         Count(b.trips())});
  }
  Section section;
  section.title = absl::StrCat("BREAKERS NOT CLOSED (", open.size(), ")");
  section.none = "all closed";
  if (!rows.empty()) {
    section.lines = Table({{"KEY", 0, true},
                           {"STATE", 9, true},
                           {"FAILURES", 8},
                           {"CALLS", 8},
                           {"NEXT PROBE", 10},
                           {"TRIPS", 6}},
                          rows, width);
  }
  return section;
}

Section Jobs(const TopFrame& frame, int width) {
  std::map<std::string, uint64_t> done_before;
  if (frame.previous != nullptr)
    for (const v1::JobStatus& j : frame.previous->jobs)
      done_before[j.job_id()] = j.done();
  std::vector<v1::JobStatus> running;
  for (const v1::JobStatus& j : frame.current->jobs)
    if (j.state() == v1::JOB_RUNNING) running.push_back(j);
  std::sort(running.begin(), running.end(),
            [](const v1::JobStatus& a, const v1::JobStatus& b) {
              return std::make_tuple(a.created_unix_ms(), a.job_id()) <
                     std::make_tuple(b.created_unix_ms(), b.job_id());
            });
  double seconds = Seconds(frame);
  std::vector<Row> rows;
  for (const v1::JobStatus& j : running) {
    auto before = done_before.find(j.job_id());
    double rate = before == done_before.end()
                      ? -1
                      : RatePerSecond(before->second, j.done(), seconds);
    // Until its input is all in, a job's total (and so its ETA) is a floor.
    const char* more = j.input_closed() ? "" : "+";
    std::string eta = "-";
    if (rate > 0 && j.total() >= j.done())
      eta = absl::StrCat(FormatEta((j.total() - j.done()) / rate), more);
    rows.push_back(
        {j.job_id(), absl::StrCat(j.done(), "/", j.total(), more),
         j.total() > 0 ? absl::StrFormat("%.0f%%", 100.0 * j.done() / j.total())
                       : "-",
         Rate(rate), Count(j.failed()), eta, j.owner()});
  }
  Section section;
  section.title = absl::StrCat("RUNNING JOBS (", running.size(), ")");
  section.none = "none";
  if (!rows.empty()) {
    section.lines = Table({{"JOB", 0, true},
                           {"DONE/TOTAL", 15},
                           {"%", 4},
                           {"REQ/S", 7},
                           {"FAILED", 7},
                           {"ETA", 7},
                           {"OWNER", 0, true}},
                          rows, width);
  }
  return section;
}

}  // namespace

std::string FitCell(const std::string& text, int width) {
  if (width <= 0 || static_cast<int>(text.size()) <= width) return text;
  return text.substr(0, width - 1) + "~";
}

double RatePerSecond(uint64_t before, uint64_t now, double seconds) {
  if (seconds <= 0 || now < before) return -1;
  return (now - before) / seconds;
}

std::string FormatEta(double seconds) {
  if (!(seconds >= 0) || std::isinf(seconds)) return "-";
  if (seconds > 99 * 86400.0) return ">99d";
  int64_t s = static_cast<int64_t>(std::ceil(seconds));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  if (s < 86400) return absl::StrFormat("%dh%02dm", s / 3600, s % 3600 / 60);
  return absl::StrFormat("%dd%02dh", s / 86400, s % 86400 / 3600);
}

std::vector<std::string> RenderTop(const TopFrame& frame, int width,
                                   int height) {
  std::vector<std::string> lines;
  std::string title = absl::StrCat("fetchctl top - ", frame.coordinator);
  if (!frame.clock.empty()) absl::StrAppend(&title, " - ", frame.clock);
  if (frame.keys) {
    constexpr char kKeys[] = "q: quit";
    int room = width - static_cast<int>(title.size());
    if (width == 0 || room >= static_cast<int>(sizeof(kKeys)) + 1) {
      title += std::string(width == 0 ? 2 : room - (sizeof(kKeys) - 1), ' ');
      title += kKeys;
    }
  }
  lines.push_back(title);
  if (!frame.error.empty()) {
    lines.push_back(absl::StrCat("error: ", frame.error));
  } else if (frame.current == nullptr) {
    lines.push_back("connecting...");
  } else if (frame.previous == nullptr) {
    lines.push_back("(rates from the next refresh)");
  } else {
    lines.push_back("");
  }

  if (frame.current != nullptr) {
    std::vector<Section> sections = {
        Workers(frame, width), RateKeys(frame, width), Breakers(frame, width),
        Jobs(frame, width)};
    // Each section costs a blank line, its title and, when it lists anything,
    // its column header; rows share what is left, in turns, so a long
    // section cannot push the others off the screen. When not everything
    // fits, the blank lines go first.
    std::vector<size_t> rows(sections.size(), 0);
    bool blanks = true;
    if (height > 0) {
      int left = height - static_cast<int>(lines.size());
      int wanted = 0;
      for (const Section& s : sections)
        wanted += s.lines.empty() ? 2 : 2 + static_cast<int>(s.lines.size());
      blanks = wanted <= left;
      for (const Section& s : sections)
        left -= (s.lines.empty() ? 1 : 2) + (blanks ? 1 : 0);
      bool gave = true;
      while (left > 0 && gave) {
        gave = false;
        for (size_t i = 0; i < sections.size() && left > 0; ++i) {
          if (sections[i].lines.size() > rows[i] + 1) {
            ++rows[i];
            --left;
            gave = true;
          }
        }
      }
    } else {
      for (size_t i = 0; i < sections.size(); ++i)
        rows[i] = sections[i].lines.empty() ? 0 : sections[i].lines.size() - 1;
    }
    for (size_t i = 0; i < sections.size(); ++i) {
      const Section& s = sections[i];
      if (blanks) lines.push_back("");
      if (s.lines.empty()) {
        lines.push_back(absl::StrCat(s.title, ": ", s.none));
        continue;
      }
      lines.push_back(s.title);
      lines.push_back(s.lines[0]);
      size_t total = s.lines.size() - 1;
      size_t shown = rows[i] < total && rows[i] > 0 ? rows[i] - 1 : rows[i];
      for (size_t r = 0; r < shown; ++r) lines.push_back(s.lines[1 + r]);
      if (shown < total && rows[i] > 0)
        lines.push_back(absl::StrCat("... ", total - shown, " more"));
    }
  }
  if (height > 0 && static_cast<int>(lines.size()) > height)
    lines.resize(height);
  for (std::string& line : lines) {
    // Names come from workers and submitters: no byte of theirs may steer
    // the terminal (an escape sequence), and one byte is one column.
    for (char& c : line)
      if (c < 0x20 || c > 0x7e) c = '?';
    line = FitCell(line, width);
  }
  return lines;
}

}  // namespace fetchfleet::fetchctl
