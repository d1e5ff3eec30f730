#include "coordinator/input_ledger.h"

namespace fetchfleet::coordinator {

void InputLedger::Restore(const std::vector<InputChunk>& chunks) {
  for (const InputChunk& stored : chunks) {
    Chunk chunk;
    chunk.count = stored.count;
    chunk.answered = stored.answered;
    chunk.answered_count =
        static_cast<uint32_t>(CountBits(chunk.answered, chunk.count));
    chunk.written = true;
    waiting_ += chunk.count - chunk.answered_count;
    chunks_.emplace(stored.first, std::move(chunk));
  }
}

void InputLedger::Add(const SpooledLine& line) {
  Chunk* open = nullptr;
  if (!chunks_.empty()) {
    auto last = std::prev(chunks_.end());
    if (!last->second.written && last->second.count < kChunkLines &&
        last->first + last->second.count == line.index)
      open = &last->second;
  }
  if (open == nullptr) open = &chunks_[line.index];
  AppendLine(line, &open->lines);
  ++open->count;
  ++waiting_;
}

void InputLedger::Answer(uint64_t index) {
  auto it = chunks_.upper_bound(index);
  if (it == chunks_.begin()) return;
  --it;
  Chunk& chunk = it->second;
  uint64_t bit = index - it->first;
  if (bit >= chunk.count || BitIsSet(chunk.answered, bit)) return;
  SetBit(&chunk.answered, bit);
  ++chunk.answered_count;
  --waiting_;
  if (chunk.written && !chunk.dirty) {
    chunk.dirty = true;
    dirty_.push_back(it->first);
  }
}

void InputLedger::Flush(JobStore* store, const std::string& job_id) {
  for (uint64_t first : dirty_) {
    auto it = chunks_.find(first);
    if (it == chunks_.end()) continue;
    Chunk& chunk = it->second;
    chunk.dirty = false;
    if (chunk.answered_count == chunk.count) {
      store->DeleteInputChunk(job_id, first);
      chunks_.erase(it);
    } else {
      store->PutAnswered(job_id, first, chunk.answered);
    }
  }
  dirty_.clear();
  // Chunks not yet written are the newest: at the end of the map.
  for (auto it = chunks_.rbegin();
       it != chunks_.rend() && !it->second.written;) {
    Chunk& chunk = it->second;
    if (chunk.answered_count == chunk.count) {
      it = std::make_reverse_iterator(chunks_.erase(std::next(it).base()));
      continue;
    }
    store->PutInputChunk(job_id, it->first, chunk.count, std::move(chunk.lines),
                         chunk.answered);
    chunk.lines = std::string();
    chunk.written = true;
    ++it;
  }
}

}  // namespace fetchfleet::coordinator
