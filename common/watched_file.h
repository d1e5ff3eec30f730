// WatchedFile<T>: a file parsed into a T, re-read when it changes, so that a
// rotated certificate or an edited token file takes effect without a restart
// (Kubernetes updates a mounted Secret in place; cert-manager rotates
// certificates that way).
//
// Get() looks at the file's modification time, size and inode at most once per
// `check_every`, and re-parses it when one of them changed. A file that no
// longer parses keeps the last good version in use, with one error logged per
// change, so a half-written edit never locks everyone out.
//
// Thread-safe.
#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/logging.h"

namespace fetchfleet {

template <typename T>
class WatchedFile {
 public:
  using Value = T;
  using Parser = std::function<absl::StatusOr<T>(const std::string& text)>;

  WatchedFile(std::string path, Parser parse,
              absl::Duration check_every = absl::Seconds(1))
      : path_(std::move(path)),
        parse_(std::move(parse)),
        check_every_(check_every) {}

  const std::string& path() const { return path_; }

  // Load reads the file now; an error is for the caller to report (at start-up
  // a bad file stops the process).
  absl::Status Load() {
    std::lock_guard<std::mutex> lock(mu_);
    return Reload(/*initial=*/true);
  }

  // Get: the current version (null until a Load succeeded).
  std::shared_ptr<const T> Get() {
    std::lock_guard<std::mutex> lock(mu_);
    absl::Time now = absl::Now();
    if (now - last_check_ >= check_every_) {
      last_check_ = now;
      (void)Reload(/*initial=*/false);
    }
    return current_;
  }

 private:
  struct Stamp {
    int64_t mtime_ns = -1;
    int64_t size = -1;
    uint64_t inode = 0;
    bool operator==(const Stamp& o) const {
      return mtime_ns == o.mtime_ns && size == o.size && inode == o.inode;
    }
  };

  absl::Status Reload(bool initial) {
    struct stat st;
    if (::stat(path_.c_str(), &st) != 0) {
      absl::Status error = absl::NotFoundError(
          absl::StrCat("cannot read ", path_, ": ", std::strerror(errno)));
      if (!initial && !failed_)
        FF_LOG(ERROR) << error.message() << "; keeping the last version";
      failed_ = true;
      return error;
    }
    Stamp stamp{static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                    st.st_mtim.tv_nsec,
                static_cast<int64_t>(st.st_size),
                static_cast<uint64_t>(st.st_ino)};
    if (!initial && stamp == stamp_) return absl::OkStatus();
    stamp_ = stamp;
    std::ifstream in(path_, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<T> parsed = in ? parse_(text.str())
                                  : absl::StatusOr<T>(absl::NotFoundError(
                                        absl::StrCat("cannot read ", path_)));
    if (!parsed.ok()) {
      absl::Status error = absl::InvalidArgumentError(
          absl::StrCat(path_, ": ", parsed.status().message()));
      if (!initial)
        FF_LOG(ERROR) << error.message() << "; keeping the last version";
      failed_ = true;
      return error;
    }
    current_ = std::make_shared<const T>(*std::move(parsed));
    failed_ = false;
    if (!initial) FF_LOG(INFO) << "reloaded " << path_;
    return absl::OkStatus();
  }

  const std::string path_;
  const Parser parse_;
  const absl::Duration check_every_;
  std::mutex mu_;
  Stamp stamp_;
  bool failed_ = false;
  absl::Time last_check_ = absl::InfinitePast();
  std::shared_ptr<const T> current_;
};

}  // namespace fetchfleet
