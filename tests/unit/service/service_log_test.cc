#include "common/service/service_log.h"

#include "gtest/gtest.h"

namespace ctxmem::service {
namespace {

TEST(ServiceLogTest, AcceptsKnownLevelsOnly) {
  EXPECT_TRUE(InitServiceLog("service_log_test", "info").ok());
  EXPECT_TRUE(InitServiceLog("service_log_test", "off").ok());  // same logger again is fine
  const absl::Status bad = InitServiceLog("service_log_test", "loud");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad.message()).find("trace, debug, info"), std::string::npos);
  LogInfo("not shown at level off");
}

}  // namespace
}  // namespace ctxmem::service
