#include "fetchctl/input_reader.h"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/request_parser.h"

namespace fetchfleet::fetchctl {

absl::StatusOr<std::unique_ptr<InputReader>> InputReader::Open(
    const std::string& path) {
  if (path == "-")
    return std::unique_ptr<InputReader>(new InputReader(stdin, false, "stdin"));
  FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  return std::unique_ptr<InputReader>(new InputReader(file, true, path));
}

InputReader::InputReader(FILE* file, bool owned, std::string name)
    : file_(file), owned_(owned), fd_(::fileno(file)), name_(std::move(name)) {
  // Regular files (and directories, whose read fails at once) never wait.
  struct stat st;
  bool waits =
      ::fstat(fd_, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode));
  if (waits && ::pipe(wake_) != 0) wake_[0] = wake_[1] = -1;
}

InputReader::~InputReader() {
  if (wake_[0] >= 0) {
    ::close(wake_[0]);
    ::close(wake_[1]);
  }
  if (owned_) std::fclose(file_);
}

void InputReader::Cancel() {
  if (wake_[1] < 0) return;
  char byte = 0;
  while (::write(wake_[1], &byte, 1) < 0 && errno == EINTR) {
  }
}

bool InputReader::Ready() {
  if (wake_[0] < 0) return true;
  struct pollfd fds[1] = {{fd_, POLLIN, 0}};
  return ::poll(fds, 1, 0) > 0;
}

ssize_t InputReader::Read(char* data, size_t size) {
  while (true) {
    if (wake_[0] >= 0) {
      struct pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      int n = ::poll(fds, 2, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0 && (fds[1].revents & POLLIN)) return 0;  // cancelled
    }
    ssize_t n = ::read(fd_, data, size);
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

bool InputReader::NextLine(std::string* line) {
  line->clear();
  bool cut = false;
  for (;;) {
    if (pos_ >= buffer_.size()) {
      if (eof_) return !line->empty() || cut;
      buffer_.resize(1 << 16);
      ssize_t n = Read(buffer_.data(), buffer_.size());
      int error = errno;
      buffer_.resize(n > 0 ? static_cast<size_t>(n) : 0);
      pos_ = 0;
      if (n <= 0) {
        eof_ = true;
        if (n < 0) {
          status_ = absl::InvalidArgumentError(
              absl::StrCat("reading ", name_, ": ", std::strerror(error)));
          return false;
        }
        continue;
      }
    }
    const char* start = buffer_.data() + pos_;
    const char* newline = static_cast<const char*>(
        std::memchr(start, '\n', buffer_.size() - pos_));
    size_t len =
        newline ? static_cast<size_t>(newline - start) : buffer_.size() - pos_;
    if (!cut) {
      size_t room =
          kMaxLineBytes + 1 - std::min(line->size(), kMaxLineBytes + 1);
      line->append(start, std::min(len, room));
      cut = line->size() > kMaxLineBytes;
    }
    pos_ += len + (newline ? 1 : 0);
    if (newline) return true;
  }
}

bool InputReader::NextBatch(size_t max_lines, size_t max_bytes,
                            std::vector<std::string>* lines) {
  lines->clear();
  size_t bytes = 0;
  std::string line;
  while (lines->size() < max_lines && bytes < max_bytes) {
    // A batch goes when no more input is ready: lines typed or trickling
    // from a pipe go now, not when a thousand have come.
    if (!lines->empty() && pos_ >= buffer_.size() && !eof_ && !Ready()) break;
    if (!NextLine(&line)) break;
    bytes += line.size();
    lines->push_back(std::move(line));
  }
  if (!status_.ok()) {
    lines->clear();
    return false;
  }
  return !lines->empty();
}

}  // namespace fetchfleet::fetchctl
