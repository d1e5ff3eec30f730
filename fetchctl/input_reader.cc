#include "fetchctl/input_reader.h"

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

InputReader::~InputReader() {
  if (owned_) std::fclose(file_);
}

bool InputReader::NextLine(std::string* line) {
  line->clear();
  bool cut = false;
  for (;;) {
    if (pos_ >= buffer_.size()) {
      if (eof_) return !line->empty() || cut;
      buffer_.resize(1 << 16);
      size_t n = std::fread(buffer_.data(), 1, buffer_.size(), file_);
      buffer_.resize(n);
      pos_ = 0;
      if (n == 0) {
        eof_ = true;
        if (std::ferror(file_)) {
          status_ = absl::InvalidArgumentError(
              absl::StrCat("reading ", name_, ": ", std::strerror(errno)));
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
  while (lines->size() < max_lines && bytes < max_bytes && NextLine(&line)) {
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
