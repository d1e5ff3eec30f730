// InputLedger: which of a durable job's input lines still wait for a result,
// kept as the store keeps them: runs of consecutive lines (chunks), each one
// row with a bitmap of the lines answered (store_rows.h).
//
// Lines and answers gather in memory and go to the store in the job's next
// commit (Flush): a chunk is written once with the lines it gathered, its
// bitmap is rewritten when lines of it are answered, and it is deleted when
// the last one is. A chunk answered whole before its commit is never written.
// Because the answers go in the same commit as the results, every committed
// state has each line either waiting (unanswered in its chunk) or answered.
//
// Memory: the lines of the chunk being gathered, and one bit per line of each
// chunk that still has a line waiting.
//
// Loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "coordinator/job_store.h"

namespace fetchfleet::coordinator {

class InputLedger {
 public:
  // A chunk holds at most this many lines.
  static constexpr uint32_t kChunkLines = 2048;

  // Restore takes the chunks a store recovered.
  void Restore(const std::vector<InputChunk>& chunks);
  // Add records input line `line.index` as waiting.
  void Add(const SpooledLine& line);
  // Answer records that line `index` has its result (a line the ledger does
  // not know is ignored).
  void Answer(uint64_t index);
  // Flush queues the changes since the last Flush as store writes.
  void Flush(JobStore* store, const std::string& job_id);
  // Lines waiting for a result.
  uint64_t waiting() const { return waiting_; }

 private:
  struct Chunk {
    uint32_t count = 0;
    uint32_t answered_count = 0;
    std::string answered;  // bitmap
    std::string lines;     // until written
    bool written = false;
    bool dirty = false;  // answered changed since it was written
  };

  std::map<uint64_t, Chunk> chunks_;  // by the index of their first line
  std::vector<uint64_t> dirty_;       // written chunks with new answers
  uint64_t waiting_ = 0;
};

}  // namespace fetchfleet::coordinator
