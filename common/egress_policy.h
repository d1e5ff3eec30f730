// EgressPolicy: which addresses a worker may connect to. The fetcher is an SSRF
// engine if careless, so the check runs on the address actually being connected
// to (libcurl's open-socket callback), after DNS and on every redirect hop: a
// name that resolves to 10.x or a redirect to 169.254.169.254 is caught where
// it matters.
//
// Refused by default: loopback, private (RFC 1918, ULA), CGNAT, link-local
// (which holds the cloud metadata address), multicast, reserved, unspecified
// and the documentation/benchmark ranges, including IPv4 embedded in IPv6
// (mapped, NAT64, 6to4). `Allow` opens a range. Immutable after setup;
// thread-safe to read.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fetchfleet {

// Cidr is an address range, IPv4 stored as IPv4-mapped IPv6.
struct Cidr {
  std::array<uint8_t, 16> address{};
  int prefix_len = 0;  // in IPv6 bits (an IPv4 /8 is stored as /104)

  // Parse reads "10.0.0.0/8", "fd00::/8" or a bare address (a /32 or /128).
  static absl::StatusOr<Cidr> Parse(absl::string_view text);
  bool Contains(const std::array<uint8_t, 16>& ip) const;
};

class EgressPolicy {
 public:
  EgressPolicy();

  // Allow opens a range that the defaults refuse.
  void Allow(const Cidr& range) { allowed_.push_back(range); }
  // AllowAll turns the address check off (for trusted networks only).
  void AllowAll() { allow_all_ = true; }

  // Check returns OK when `addr` may be connected to, else PermissionDenied
  // naming the address and the range that refused it.
  absl::Status Check(const sockaddr* addr) const;
  absl::Status CheckIp(const std::array<uint8_t, 16>& ip) const;

 private:
  struct Denied {
    Cidr range;
    const char* why;
  };
  std::vector<Denied> denied_;
  std::vector<Cidr> allowed_;
  bool allow_all_ = false;
};

// FormatIp prints an address stored as 16 bytes (IPv4-mapped shown as dotted
// quad).
std::string FormatIp(const std::array<uint8_t, 16>& ip);

}  // namespace fetchfleet
