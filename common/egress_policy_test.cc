#include "common/egress_policy.h"

#include "gtest/gtest.h"

namespace fetchfleet {
namespace {

std::array<uint8_t, 16> Ip(const char* text) {
  return Cidr::Parse(text)->address;
}

TEST(EgressPolicyTest, RefusesSpecialPurposeAddresses) {
  EgressPolicy policy;
  for (const char* ip :
       {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
        "169.254.169.254", "100.100.100.200", "0.0.0.0", "224.0.0.1",
        "255.255.255.255", "::1", "::", "fe80::1", "fd00:ec2::254", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a00:1",
        "2002:a9fe:a9fe::1"}) {
    absl::Status status = policy.CheckIp(Ip(ip));
    EXPECT_TRUE(absl::IsPermissionDenied(status)) << ip;
  }
}

TEST(EgressPolicyTest, AllowsPublicAddresses) {
  EgressPolicy policy;
  for (const char* ip : {"93.184.216.34", "8.8.8.8", "172.32.0.1",
                         "2606:4700::1111", "::ffff:1.1.1.1"}) {
    EXPECT_TRUE(policy.CheckIp(Ip(ip)).ok()) << ip;
  }
}

TEST(EgressPolicyTest, MessageNamesAddressAndReason) {
  EgressPolicy policy;
  absl::Status status = policy.CheckIp(Ip("169.254.169.254"));
  EXPECT_NE(status.message().find("169.254.169.254"), absl::string_view::npos);
  EXPECT_NE(status.message().find("metadata"), absl::string_view::npos);
}

TEST(EgressPolicyTest, AllowCidrOpensOnlyThatRange) {
  EgressPolicy policy;
  policy.Allow(*Cidr::Parse("127.0.0.0/8"));
  EXPECT_TRUE(policy.CheckIp(Ip("127.0.0.1")).ok());
  EXPECT_TRUE(policy.CheckIp(Ip("::ffff:127.0.0.5")).ok());
  EXPECT_FALSE(policy.CheckIp(Ip("10.0.0.1")).ok());
  EXPECT_FALSE(policy.CheckIp(Ip("169.254.169.254")).ok());
}

TEST(CidrTest, ParsesAndMatchesPrefixes) {
  auto cidr = Cidr::Parse("10.20.0.0/14");
  ASSERT_TRUE(cidr.ok());
  EXPECT_TRUE(cidr->Contains(Ip("10.23.255.255")));
  EXPECT_FALSE(cidr->Contains(Ip("10.24.0.0")));
  EXPECT_FALSE(Cidr::Parse("10.0.0.0/33").ok());
  EXPECT_FALSE(Cidr::Parse("not-an-ip").ok());
  EXPECT_FALSE(Cidr::Parse("10.0.0.0/x").ok());
  EXPECT_TRUE(Cidr::Parse("fd00::/8").ok());
}

}  // namespace
}  // namespace fetchfleet
