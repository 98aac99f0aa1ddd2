#include "common/service/grpc_status.h"

#include <gtest/gtest.h>

#include <string>

namespace ctxmem::service {
namespace {

TEST(GrpcStatusTest, KeepsCodeAndMessageBothWays) {
  for (absl::StatusCode code :
       {absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound,
        absl::StatusCode::kResourceExhausted, absl::StatusCode::kDataLoss,
        absl::StatusCode::kUnauthenticated, absl::StatusCode::kFailedPrecondition,
        absl::StatusCode::kCancelled, absl::StatusCode::kDeadlineExceeded}) {
    absl::Status status(code, "what went wrong");
    grpc::Status wire = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(wire.error_code()), static_cast<int>(code));
    EXPECT_EQ(wire.error_message(), "what went wrong");
    EXPECT_EQ(FromGrpcStatus(wire), status);
  }
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(GrpcStatusTest, CutsHugeMessages) {
  grpc::Status wire = ToGrpcStatus(absl::InvalidArgumentError(std::string(100000, 'x')));
  EXPECT_EQ(wire.error_message().size(), 4096u);
  EXPECT_EQ(wire.error_message().substr(4093), "...");
}

}  // namespace
}  // namespace ctxmem::service
