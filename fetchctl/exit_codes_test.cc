#include "fetchctl/exit_codes.h"

#include "gtest/gtest.h"

namespace fetchfleet::fetchctl {
namespace {

using grpc::StatusCode;

TEST(ExitCodesTest, OneMappingForEveryCommand) {
  EXPECT_EQ(ExitCodeFor(grpc::Status::OK), kExitOk);
  for (StatusCode code :
       {StatusCode::INVALID_ARGUMENT, StatusCode::NOT_FOUND,
        StatusCode::OUT_OF_RANGE, StatusCode::FAILED_PRECONDITION,
        StatusCode::ALREADY_EXISTS, StatusCode::UNAUTHENTICATED,
        StatusCode::PERMISSION_DENIED, StatusCode::RESOURCE_EXHAUSTED,
        StatusCode::UNIMPLEMENTED}) {
    EXPECT_EQ(ExitCodeFor(grpc::Status(code, "x")), kExitUsage) << code;
    // A refusal is a refusal on a stream too.
    EXPECT_EQ(ExitCodeForBrokenStream(grpc::Status(code, "x")), kExitUsage)
        << code;
  }
  for (StatusCode code : {StatusCode::UNAVAILABLE, StatusCode::CANCELLED,
                          StatusCode::DEADLINE_EXCEEDED}) {
    EXPECT_EQ(ExitCodeFor(grpc::Status(code, "x")), kExitUnreachable) << code;
  }
  for (StatusCode code : {StatusCode::INTERNAL, StatusCode::UNKNOWN,
                          StatusCode::ABORTED, StatusCode::DATA_LOSS}) {
    EXPECT_EQ(ExitCodeFor(grpc::Status(code, "x")), kExitSomeFailed) << code;
    // A job stream that ends so broke: the job may run on.
    EXPECT_EQ(ExitCodeForBrokenStream(grpc::Status(code, "x")),
              kExitUnreachable)
        << code;
  }
  EXPECT_EQ(ExitCodeFor(absl::StatusCode::kNotFound), kExitUsage);
}

TEST(ExitCodesTest, CredentialsAndLimitsAreSaidPlainly) {
  EXPECT_NE(ErrorText(grpc::Status(StatusCode::UNAUTHENTICATED, "no token"))
                .find("not authenticated: no token"),
            std::string::npos);
  EXPECT_NE(ErrorText(grpc::Status(StatusCode::PERMISSION_DENIED, "admin only"))
                .find("permission denied: admin only"),
            std::string::npos);
  EXPECT_NE(ErrorText(grpc::Status(StatusCode::RESOURCE_EXHAUSTED, "64 jobs"))
                .find("at a limit: 64 jobs"),
            std::string::npos);
  EXPECT_EQ(ErrorText(grpc::Status(StatusCode::NOT_FOUND, "no job j1")),
            "no job j1");
}

}  // namespace
}  // namespace fetchfleet::fetchctl
