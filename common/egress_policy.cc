#include "common/egress_policy.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fetchfleet {
namespace {

constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0,    0,
                                                   0, 0, 0, 0, 0xff, 0xff};

std::array<uint8_t, 16> MapV4(const uint8_t v4[4]) {
  std::array<uint8_t, 16> ip{};
  std::memcpy(ip.data(), kMappedPrefix.data(), 12);
  std::memcpy(ip.data() + 12, v4, 4);
  return ip;
}

bool IsMapped(const std::array<uint8_t, 16>& ip) {
  return std::memcmp(ip.data(), kMappedPrefix.data(), 12) == 0;
}

}  // namespace

absl::StatusOr<Cidr> Cidr::Parse(absl::string_view text) {
  absl::string_view addr_text = text;
  int prefix = -1;
  if (size_t slash = text.find('/'); slash != absl::string_view::npos) {
    addr_text = text.substr(0, slash);
    if (!absl::SimpleAtoi(text.substr(slash + 1), &prefix) || prefix < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad prefix length in CIDR \"", text, "\""));
    }
  }
  std::string addr(addr_text);
  Cidr cidr;
  uint8_t v4[4];
  in6_addr v6;
  if (inet_pton(AF_INET, addr.c_str(), v4) == 1) {
    if (prefix > 32)
      return absl::InvalidArgumentError(
          absl::StrCat("prefix > 32 in \"", text, "\""));
    cidr.address = MapV4(v4);
    cidr.prefix_len = 96 + (prefix < 0 ? 32 : prefix);
  } else if (inet_pton(AF_INET6, addr.c_str(), &v6) == 1) {
    if (prefix > 128)
      return absl::InvalidArgumentError(
          absl::StrCat("prefix > 128 in \"", text, "\""));
    std::memcpy(cidr.address.data(), &v6, 16);
    cidr.prefix_len = prefix < 0 ? 128 : prefix;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not an IP address or CIDR"));
  }
  return cidr;
}

bool Cidr::Contains(const std::array<uint8_t, 16>& ip) const {
  int full = prefix_len / 8;
  if (std::memcmp(ip.data(), address.data(), full) != 0) return false;
  int rest = prefix_len % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (ip[full] & mask) == (address[full] & mask);
}

EgressPolicy::EgressPolicy() {
  static const struct {
    const char* cidr;
    const char* why;
  } kDenied[] = {
      {"0.0.0.0/8", "unspecified"},
      {"10.0.0.0/8", "private"},
      {"100.64.0.0/10", "carrier-grade NAT (also Alibaba metadata)"},
      {"127.0.0.0/8", "loopback"},
      {"169.254.0.0/16", "link-local (cloud metadata)"},
      {"172.16.0.0/12", "private"},
      {"192.0.0.0/24", "IETF protocol assignments"},
      {"192.0.2.0/24", "documentation"},
      {"192.168.0.0/16", "private"},
      {"198.18.0.0/15", "benchmarking"},
      {"198.51.100.0/24", "documentation"},
      {"203.0.113.0/24", "documentation"},
      {"224.0.0.0/4", "multicast"},
      {"240.0.0.0/4", "reserved"},
      {"::/128", "unspecified"},
      {"::1/128", "loopback"},
      {"fc00::/7", "unique-local (private; holds AWS metadata fd00:ec2::254)"},
      {"fe80::/10", "link-local"},
      {"fec0::/10", "site-local"},
      {"ff00::/8", "multicast"},
      {"2001:db8::/32", "documentation"},
  };
  for (const auto& d : kDenied)
    denied_.push_back({*Cidr::Parse(d.cidr), d.why});
}

absl::Status EgressPolicy::CheckIp(const std::array<uint8_t, 16>& ip) const {
  if (allow_all_) return absl::OkStatus();
  // IPv4 hidden in IPv6 is judged as the IPv4 it reaches: NAT64 (64:ff9b::/96),
  // 6to4 (2002::/16) and the deprecated IPv4-compatible form (::a.b.c.d).
  std::array<uint8_t, 16> effective = ip;
  static const uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0,
                                     0, 0,    0,    0,    0, 0};
  static const uint8_t kZero12[12] = {};
  if (std::memcmp(ip.data(), kNat64, 12) == 0 ||
      (std::memcmp(ip.data(), kZero12, 12) == 0 &&
       !(ip[12] == 0 && ip[13] == 0 && ip[14] == 0))) {
    effective = MapV4(ip.data() + 12);
  } else if (ip[0] == 0x20 && ip[1] == 0x02) {
    effective = MapV4(ip.data() + 2);
  }
  for (const Cidr& allowed : allowed_) {
    if (allowed.Contains(effective) || allowed.Contains(ip))
      return absl::OkStatus();
  }
  for (const Denied& denied : denied_) {
    if (denied.range.Contains(effective)) {
      return absl::PermissionDeniedError(absl::StrCat(
          "address ", FormatIp(ip), " is ", denied.why,
          "; refused by the egress policy (allow it with --allow-cidr)"));
    }
  }
  return absl::OkStatus();
}

absl::Status EgressPolicy::Check(const sockaddr* addr) const {
  std::array<uint8_t, 16> ip{};
  if (addr->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    ip = MapV4(reinterpret_cast<const uint8_t*>(&in->sin_addr));
  } else if (addr->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    std::memcpy(ip.data(), &in6->sin6_addr, 16);
  } else {
    return absl::PermissionDeniedError(
        "only IPv4 and IPv6 connections are allowed");
  }
  return CheckIp(ip);
}

std::string FormatIp(const std::array<uint8_t, 16>& ip) {
  char buf[INET6_ADDRSTRLEN];
  if (IsMapped(ip)) {
    inet_ntop(AF_INET, ip.data() + 12, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, ip.data(), buf, sizeof(buf));
  }
  return buf;
}

}  // namespace fetchfleet
