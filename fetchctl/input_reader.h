// InputReader: reads a job list (a file or stdin) as lines, in bounded memory
// whatever the file's size. A line longer than the request-line limit is cut
// just past the limit (the coordinator then reports it as too_large) and the
// rest of it is skipped unread.
//
// Not thread-safe: one reader thread.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fetchfleet::fetchctl {

class InputReader {
 public:
  // Open opens `path`; "-" means stdin.
  static absl::StatusOr<std::unique_ptr<InputReader>> Open(
      const std::string& path);
  ~InputReader();

  // NextBatch fills `lines` with up to `max_lines` lines or about `max_bytes`
  // bytes; returns false at the end of input (with `lines` empty), or when
  // reading failed (then status() says why).
  bool NextBatch(size_t max_lines, size_t max_bytes,
                 std::vector<std::string>* lines);

  // status: a read error (EISDIR, EIO...), which ends the input like an end
  // of file would, but must not pass for one: the job would silently miss
  // the rest of its list.
  const absl::Status& status() const { return status_; }

 private:
  InputReader(FILE* file, bool owned, std::string name)
      : file_(file), owned_(owned), name_(std::move(name)) {}
  bool NextLine(std::string* line);

  FILE* file_;
  bool owned_;
  std::string buffer_;
  size_t pos_ = 0;
  bool eof_ = false;
  std::string name_;  // for messages
  absl::Status status_;
};

}  // namespace fetchfleet::fetchctl
