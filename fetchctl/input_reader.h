// InputReader: reads a job list (a file or stdin) as lines, in bounded memory
// whatever the file's size. A line longer than the request-line limit is cut
// just past the limit (the coordinator then reports it as too_large) and the
// rest of it is skipped unread.
//
// From a pipe or terminal it reads what is there (read(2), not fread, which
// waits for 64 KiB): a batch goes as soon as no more input is ready, so
// `tail -f urls | fetchctl submit` streams; and a read waiting for input can
// be cancelled (the call ended: nothing more will be sent).
//
// Not thread-safe: one reader thread; Cancel() from any thread.
#pragma once

#include <sys/types.h>

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

  // Cancel ends a read that waits for input (NextBatch then returns false
  // with status() ok). Thread-safe.
  void Cancel();

 private:
  InputReader(FILE* file, bool owned, std::string name);
  bool NextLine(std::string* line);
  // Read: read(2), or 0 at cancel; waits for input unless `ready_only` and
  // then returns -2 when none is ready.
  ssize_t Read(char* data, size_t size);
  // Ready: input can be read without waiting (always, for a regular file).
  bool Ready();

  FILE* file_;
  bool owned_;
  int fd_;
  int wake_[2] = {-1, -1};  // a pipe or terminal: Cancel() writes here
  std::string buffer_;
  size_t pos_ = 0;
  bool eof_ = false;
  std::string name_;  // for messages
  absl::Status status_;
};

}  // namespace fetchfleet::fetchctl
