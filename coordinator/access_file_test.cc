#include "coordinator/access_file.h"

#include "gtest/gtest.h"

namespace fetchfleet::coordinator {
namespace {

// SHA-256("secret"), as `printf secret | sha256sum` prints it.
constexpr char kSecretDigest[] =
    "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";

TEST(AccessFileTest, TokenDigestIsTheHexSha256) {
  EXPECT_EQ(TokenDigest("secret"), kSecretDigest);
}

TEST(AccessFileTest, ReadsTokensAndCertificateIdentities) {
  auto table = ParseAccessFile(
      "# comment\n"
      "\n"
      "alice  submit  sha256:" +
      std::string(kSecretDigest) +
      "   # trailing comment\n"
      "ci-bot submit,read cert\n");
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->tokens.count(kSecretDigest), 1u);
  EXPECT_EQ(table->tokens.at(kSecretDigest).name, "alice");
  EXPECT_EQ(table->tokens.at(kSecretDigest).roles, kRoleSubmit);
  ASSERT_EQ(table->certificates.count("ci-bot"), 1u);
  EXPECT_EQ(table->certificates.at("ci-bot").roles, kRoleSubmit | kRoleRead);
}

TEST(AccessFileTest, UpperCaseHexIsTheSameToken) {
  std::string upper = kSecretDigest;
  for (char& c : upper) c = static_cast<char>(toupper(c));
  auto table = ParseAccessFile("alice submit sha256:" + upper + "\n");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->tokens.count(kSecretDigest), 1u);
}

TEST(AccessFileTest, ErrorsNameTheLine) {
  struct Case {
    std::string text;
    std::string want;
  };
  std::string ok_line = "a submit sha256:" + std::string(kSecretDigest) + "\n";
  for (const Case& c : std::vector<Case>{
           {"alice submit\n", "line 1: want three fields"},
           {"\nalice boss sha256:" + std::string(kSecretDigest),
            "line 2: unknown role \"boss\""},
           {"alice submit sha256:abc\n", "line 1: sha256: wants 64 hex"},
           {"alice submit password123\n", "line 1: the credential is"},
           {"al ice submit cert\n", "line 1: want three fields"},
           {"al$ice submit cert\n", "line 1: a name is letters"},
           {ok_line + "b read sha256:" + kSecretDigest + "\n",
            "line 2: the same token twice"},
           {"x submit cert\nx read cert\n", "line 2: certificate identity x"},
       }) {
    auto table = ParseAccessFile(c.text);
    ASSERT_FALSE(table.ok()) << c.text;
    EXPECT_NE(table.status().message().find(c.want), std::string::npos)
        << table.status().message();
  }
}

TEST(AccessPolicyTest, RolesRoundTrip) {
  auto roles = ParseRoles("read,admin");
  ASSERT_TRUE(roles.ok());
  EXPECT_EQ(*roles, kRoleRead | kRoleAdmin);
  EXPECT_EQ(RolesToString(*roles), "read,admin");
  EXPECT_FALSE(ParseRoles("read,").ok());
  EXPECT_FALSE(ParseRoles("").ok());
}

TEST(AccessPolicyTest, JobRulesFollowOwnershipAndRoles) {
  Principal alice{"alice", kRoleSubmit, "token"};
  Principal reader{"reader", kRoleRead, "token"};
  Principal ops{"ops", kRoleAdmin, "token"};
  for (Rpc rpc : {Rpc::kWatch, Rpc::kGetJob, Rpc::kCancelJob}) {
    EXPECT_TRUE(MayUseJob(alice, rpc, "alice"));
    EXPECT_FALSE(MayUseJob(alice, rpc, "bob"));
    EXPECT_TRUE(MayUseJob(ops, rpc, "bob"));
  }
  EXPECT_TRUE(MayUseJob(reader, Rpc::kWatch, "bob"));
  EXPECT_TRUE(MayUseJob(reader, Rpc::kGetJob, "bob"));
  EXPECT_FALSE(MayUseJob(reader, Rpc::kCancelJob, "bob"));
  EXPECT_FALSE(SeesAllJobs(alice));
  EXPECT_TRUE(SeesAllJobs(reader));
}

}  // namespace
}  // namespace fetchfleet::coordinator
