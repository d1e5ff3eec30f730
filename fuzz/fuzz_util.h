// Helpers shared by the fuzz targets: invariant checks that abort, so a
// broken invariant is a crash libFuzzer keeps, like an ASan report.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/logging.h"
#include "google/protobuf/message_lite.h"
#include "google/protobuf/stubs/logging.h"

namespace fetchfleet::fuzz {

// FUZZ_CHECK aborts with the failed condition when it does not hold.
#define FUZZ_CHECK(cond)                                               \
  do {                                                                 \
    if (!(cond)) {                                                     \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, \
                   __LINE__, #cond);                                   \
      std::abort();                                                    \
    }                                                                  \
  } while (0)

// QuietLogs drops log lines below errors, ours and protobuf's (which logs
// every string field with invalid UTF-8 it parses): at thousands of inputs a
// second they would cost most of the time. Call once, first.
inline bool QuietLogs() {
  SetLogLevel(LogLevel::kError);
  google::protobuf::SetLogHandler(nullptr);
  return true;
}

// RoundTrips reports whether `message` survives the wire: proto3 string
// fields must be UTF-8, or the peer's parse fails and its stream breaks.
template <typename Message>
bool RoundTrips(const Message& message) {
  std::string wire;
  if (!message.SerializeToString(&wire)) return false;
  Message back;
  return back.ParseFromString(wire);
}

// ByteReader takes typed values off the front of the fuzz bytes (zeros once
// they run out). Text ends at a backslash followed by any byte but another
// backslash (which stands for one backslash), as in libFuzzer's
// FuzzedDataProvider, so every byte value can occur in text.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  // Bits: `bytes` bytes, little-endian.
  uint64_t Bits(int bytes) {
    uint64_t value = 0;
    for (int i = 0; i < bytes && at_ < size_; ++i)
      value |= uint64_t{data_[at_++]} << (8 * i);
    return value;
  }
  std::string Text(size_t max) {
    std::string out;
    while (at_ < size_ && out.size() < max) {
      char c = static_cast<char>(data_[at_++]);
      if (c == '\\' && at_ < size_) {
        if (data_[at_++] != '\\') break;
      }
      out.push_back(c);
    }
    return out;
  }
  std::string Rest() {
    std::string out(reinterpret_cast<const char*>(data_ + at_), size_ - at_);
    at_ = size_;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

}  // namespace fetchfleet::fuzz
