#include "common/client_credentials.h"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>

#include "gtest/gtest.h"

namespace fetchfleet {
namespace {

TEST(ClientCredentialsTest, LoopbackAddresses) {
  for (const char* address :
       {"localhost:7070", "127.0.0.1:7070", "127.1.2.3:1", "[::1]:7070", "::1",
        "localhost", "dns:///localhost:7070", "ipv4:127.0.0.1:80",
        "unix:/run/fetchfleet.sock", "LOCALHOST:1", "a.localhost:1"}) {
    EXPECT_TRUE(IsLoopbackAddress(address)) << address;
  }
  for (const char* address :
       {"0.0.0.0:7070", "10.0.0.1:7070", "[::]:7070", "example.com:7070",
        "127.0.0.1.example.com:7070", "localhost.example.com:1", "128.0.0.1:1",
        "127.0.0.256:1", "[2001:db8::1]:7070", "::"}) {
    EXPECT_FALSE(IsLoopbackAddress(address)) << address;
  }
}

std::string TokenFile(const std::string& token) {
  char path[] = "/tmp/fetchfleet-token-XXXXXX";
  int fd = ::mkstemp(path);
  ::close(fd);
  std::ofstream(path) << token << "\n";
  return path;
}

TEST(ClientCredentialsTest, NoTokenInTheClearToAnotherHost) {
  ClientSecurity security;
  security.token_file = TokenFile("ffsecret-unit-token");
  auto refused = DialCoordinator("192.0.2.1:7070", security, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("in the clear"), std::string::npos);
  // The message never holds the token.
  EXPECT_EQ(refused.status().message().find("ffsecret"), std::string::npos);
  // Loopback, TLS, or an explicit --insecure are fine.
  EXPECT_TRUE(DialCoordinator("127.0.0.1:7070", security, {}).ok());
  security.insecure = true;
  EXPECT_TRUE(DialCoordinator("192.0.2.1:7070", security, {}).ok());
  security.insecure = false;
  security.tls = true;
  EXPECT_TRUE(DialCoordinator("192.0.2.1:7070", security, {}).ok());
}

TEST(ClientCredentialsTest, BadSetUpsAreNamed) {
  ClientSecurity security;
  security.cert_file = "/etc/hostname";
  auto no_key = DialCoordinator("127.0.0.1:7070", security, {});
  ASSERT_FALSE(no_key.ok());
  EXPECT_NE(no_key.status().message().find("--tls-cert and --tls-key"),
            std::string::npos);
  security = {};
  security.ca_file = "/nonexistent/ca.pem";
  auto no_ca = DialCoordinator("127.0.0.1:7070", security, {});
  ASSERT_FALSE(no_ca.ok());
  EXPECT_NE(no_ca.status().message().find("cannot read /nonexistent/ca.pem"),
            std::string::npos);
  security = {};
  security.token_file = "/nonexistent/token";
  EXPECT_FALSE(DialCoordinator("127.0.0.1:7070", security, {}).ok());
  struct Case {
    std::string path;
    std::string want;
  };
  for (const Case& c : std::vector<Case>{
           {TokenFile("two words"), "holds whitespace"},
           {TokenFile("line1\nline2"), "holds whitespace"},
           {TokenFile(""), ": empty"},
           {TokenFile(std::string(5000, 'x')), "longer than 4096"},
           {"/tmp", "not a file"},
           {TokenFile("caf\xc3\xa9"), "not printable ASCII"},
       }) {
    security.token_file = c.path;
    auto refused = DialCoordinator("127.0.0.1:7070", security, {});
    ASSERT_FALSE(refused.ok()) << c.want;
    EXPECT_NE(refused.status().message().find(c.want), std::string::npos)
        << refused.status().message();
    EXPECT_NE(refused.status().message().find("--token-file"),
              std::string::npos);
  }
  // A CA file that holds no certificate is named before any connection.
  security = {};
  security.ca_file = TokenFile("not a certificate");
  auto garbage = DialCoordinator("127.0.0.1:7070", security, {});
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.status().message().find("--tls-ca: "), std::string::npos);
  EXPECT_NE(garbage.status().message().find("holds no PEM certificate"),
            std::string::npos);
}

}  // namespace
}  // namespace fetchfleet
