// Fuzzes the coordinator's handling of worker messages
// (coordinator::Scheduler::OnWorkerMessage): a scheduler on a fake clock with
// a batch job and an interactive (Aggregate) job, two workers on fake
// channels, and then what the fuzz bytes say, record by record:
//
//   [control][length, 2 bytes little-endian][a v1::WorkerMessage]
//
// control: low 4 bits: seconds to advance the clock first; 0x10: Sweep
// after; 0x20: from worker 2 (else worker 1); 0x40: worker 2 leaves after
// the message and comes back; 0x80: lease ids below the number of
// assignments sent so far name those assignments' leases (the fuzzer cannot
// guess the table's ids). A message that does not parse is skipped.
//
// Checked: no crash and no ASan/UBSan report; a worker never gets more
// assignments than the credit it granted; nothing is sent on a channel
// whose worker left; every request gets at most one result; and once every
// worker is gone and the leases have expired, nothing is left in flight.
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "coordinator/scheduler.h"
#include "fuzz/fuzz_util.h"
#include "tests/testing/fake_clock.h"

namespace fetchfleet::coordinator {
namespace {

constexpr int kBatchRequests = 24;

class FakeChannel : public WorkerChannel {
 public:
  void Send(v1::CoordinatorMessage message) override {
    FUZZ_CHECK(attached);
    for (v1::Assignment& a : *message.mutable_assignments())
      assignments.push_back(std::move(a));
  }
  void Close(const absl::Status&) override { closed = true; }
  bool attached = true;
  bool closed = false;
  uint64_t credit_granted = 0;
  size_t counted = 0;  // assignments counted against credit_granted
  std::vector<v1::Assignment> assignments;
};

struct Fleet {
  testing::FakeClock clock;
  Scheduler scheduler{&clock, Options()};
  FakeChannel channels[2];
  uint64_t ids[2] = {0, 0};
  std::vector<uint64_t> sent_leases;  // every lease id sent, in order

  static SchedulerOptions Options() {
    SchedulerOptions o;
    o.job_limits.pending_low_water = 8;
    o.max_batch = 8;
    return o;
  }

  void Add(int w, const std::string& name) {
    channels[w].attached = true;
    ids[w] = scheduler.AddWorker(&channels[w], name, "127.0.0.1:1");
  }
  void Remove(int w) {
    scheduler.RemoveWorker(ids[w], "fuzz");
    channels[w].attached = false;
  }
  void Collect() {
    for (FakeChannel& c : channels) {
      for (; c.counted < c.assignments.size(); ++c.counted)
        sent_leases.push_back(c.assignments[c.counted].lease_id());
      FUZZ_CHECK(c.assignments.size() <= c.credit_granted);
    }
  }
};

class FakeInput : public InputStream {
 public:
  void ReadMoreInput() override {}
};

uint64_t Remap(const std::vector<uint64_t>& leases, uint64_t id) {
  return id < leases.size() ? leases[id] : id;
}

// CheckResults looks the job up by id: an ended job may have been forgotten.
void CheckResults(Scheduler& scheduler, const std::string& job_id,
                  uint64_t requests) {
  Job* job = scheduler.FindJob(job_id);
  if (job == nullptr) return;
  FUZZ_CHECK(job->next_seq() - 1 <= requests);
  std::set<uint64_t> indexes;
  for (uint64_t seq = job->first_held_seq(); seq < job->next_seq(); ++seq) {
    const v1::FetchResult& r = job->ResultAt(seq);
    FUZZ_CHECK(r.seq() == seq);
    FUZZ_CHECK(indexes.insert(r.index()).second);  // one result per request
  }
}

void Run(const uint8_t* data, size_t size) {
  Fleet fleet;
  fleet.Add(0, "w-1");
  fleet.Add(1, "w-2");
  Job* batch = fleet.scheduler.CreateJob(v1::JobOptions());
  std::vector<ParsedLine> lines;
  for (int i = 0; i < kBatchRequests; ++i) {
    std::string host = i % 3 == 0 ? "b.example" : "a.example";
    lines.push_back(ParseRequestLine(absl::StrCat("http://", host, "/", i),
                                     i + 1, i, v1::JobOptions()));
  }
  FakeInput input;
  fleet.scheduler.TakeInput(batch, &input);
  uint64_t raw_lines = lines.size();
  fleet.scheduler.AddInput(batch, std::move(lines), raw_lines, &input);
  fleet.scheduler.CloseInput(batch, &input);
  std::vector<v1::FetchRequest> parts(2);
  parts[0].set_url("http://c.example/user");
  parts[0].set_id("user");
  parts[1].set_url("http://c.example/recs");
  parts[1].set_id("recs");
  parts[1].set_index(1);
  for (v1::FetchRequest& part : parts) {
    part.set_max_attempts(2);
    part.set_timeout_ms(800);
  }
  const std::string batch_id = batch->id();
  const std::string interactive_id =
      fleet.scheduler.StartInteractive(std::move(parts), v1::JobOptions())
          ->id();

  // Records.
  size_t at = 0;
  while (at + 3 <= size) {
    uint8_t control = data[at];
    size_t length = data[at + 1] | (size_t{data[at + 2]} << 8);
    at += 3;
    length = std::min(length, size - at);
    v1::WorkerMessage message;
    bool parsed = message.ParseFromArray(data + at, static_cast<int>(length));
    at += length;
    fleet.clock.Advance(absl::Seconds(control & 0x0f));
    int w = (control & 0x20) ? 1 : 0;
    if (parsed && fleet.channels[w].attached) {
      if (control & 0x80) {
        for (v1::Completion& c : *message.mutable_completions())
          c.set_lease_id(Remap(fleet.sent_leases, c.lease_id()));
        for (uint64_t& id : *message.mutable_released())
          id = Remap(fleet.sent_leases, id);
      }
      fleet.channels[w].credit_granted += message.credit();
      fleet.scheduler.OnWorkerMessage(fleet.ids[w], message);
    }
    if (control & 0x40) {
      if (fleet.channels[1].attached) fleet.Remove(1);
      fleet.channels[1] = FakeChannel();
      fleet.Add(1, "w-2");
    }
    if (control & 0x10) fleet.scheduler.Sweep();
    fleet.Collect();
    CheckResults(fleet.scheduler, batch_id, kBatchRequests);
    CheckResults(fleet.scheduler, interactive_id, 2);
    (void)fleet.scheduler.ListWorkers();
    (void)fleet.scheduler.ListJobs();
    (void)fleet.scheduler.ListLimits();
  }

  // The end: every worker goes; what was in flight goes back to the queue.
  fleet.Remove(0);
  fleet.Remove(1);
  fleet.clock.Advance(absl::Hours(1));
  fleet.scheduler.Sweep();
  CheckResults(fleet.scheduler, batch_id, kBatchRequests);
  for (const v1::WorkerInfo& info : fleet.scheduler.ListWorkers())
    FUZZ_CHECK(info.in_flight() == 0);
  FUZZ_CHECK(fleet.scheduler.ListWorkers().empty());
}

}  // namespace
}  // namespace fetchfleet::coordinator

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = fetchfleet::fuzz::QuietLogs();
  (void)quiet;
  fetchfleet::coordinator::Run(data, size);
  return 0;
}
