// Store rows: how the job store packs many input lines, or many results, into
// one row (job_store.h). A row per line cost the coordinator more CPU than the
// fetch itself; a row per batch of lines costs a few writes per commit.
//
//   lines row:   { varint index, byte is_error, varint size, message }...
//   results row: { varint size, FetchResult }...
//   answered:    a bitmap, bit i set when line (first + i) has its result
//
// Plain functions over strings; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet::coordinator {

// SpooledLine: one input line as the store holds it: a request to deal, or the
// result of a line that did not parse.
struct SpooledLine {
  uint64_t index = 0;
  bool is_error = false;
  v1::FetchRequest request;  // !is_error
  v1::FetchResult error;     // is_error
};

void AppendLine(const SpooledLine& line, std::string* row);
// DecodeLines calls `line` for each line of a row in order; false if the row
// is damaged (the lines before the damage were passed).
bool DecodeLines(const std::string& row,
                 absl::FunctionRef<void(SpooledLine)> line);

void AppendResult(const v1::FetchResult& result, std::string* row);
bool DecodeResults(const std::string& row,
                   std::vector<v1::FetchResult>* results);

inline bool BitIsSet(const std::string& bits, size_t i) {
  return i / 8 < bits.size() && (bits[i / 8] >> (i % 8)) & 1;
}
inline void SetBit(std::string* bits, size_t i) {
  if (bits->size() <= i / 8) bits->resize(i / 8 + 1, '\0');
  (*bits)[i / 8] = static_cast<char>((*bits)[i / 8] | (1 << (i % 8)));
}
// CountBits: lines answered among the first `n`.
size_t CountBits(const std::string& bits, size_t n);

}  // namespace fetchfleet::coordinator
