#include "common/service/token_auth.h"

#include <gtest/gtest.h>

#include "tests/unit/test_files.h"

namespace ctxmem::service {
namespace {

constexpr char kTokens[] =
    "# comment line\n"
    "\n"
    "alpha-token-0123456789 tenant-a\n"
    "  beta-token-0123456789   tenant_b  \n";

TEST(TokenAuthTest, DisabledActsForTheDefaultTenant) {
  TokenAuth auth = TokenAuth::Disabled();
  EXPECT_FALSE(auth.enabled());
  absl::StatusOr<std::string> tenant = auth.Authenticate("");
  ASSERT_TRUE(tenant.ok());
  EXPECT_EQ(*tenant, kDefaultTenant);
}

TEST(TokenAuthTest, MapsBearerTokensToTenants) {
  absl::StatusOr<TokenAuth> auth = TokenAuth::Parse(kTokens);
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE(auth->enabled());
  EXPECT_EQ(*auth->Authenticate("Bearer alpha-token-0123456789"), "tenant-a");
  EXPECT_EQ(*auth->Authenticate("bearer beta-token-0123456789"), "tenant_b");
  EXPECT_EQ(*auth->Authenticate("  Bearer   beta-token-0123456789 "), "tenant_b");
}

TEST(TokenAuthTest, RefusesMissingMalformedAndUnknownTokens) {
  absl::StatusOr<TokenAuth> auth = TokenAuth::Parse(kTokens);
  ASSERT_TRUE(auth.ok());
  for (const char* header :
       {"", "Bearer", "Bearer ", "Basic alpha-token-0123456789", "alpha-token-0123456789",
        "Bearer alpha-token-012345678", "Bearer gamma-token-0123456789"}) {
    absl::StatusOr<std::string> tenant = auth->Authenticate(header);
    EXPECT_EQ(tenant.status().code(), absl::StatusCode::kUnauthenticated) << header;
  }
  // The message never echoes the presented token.
  absl::StatusOr<std::string> unknown = auth->Authenticate("Bearer gamma-token-0123456789");
  EXPECT_EQ(std::string(unknown.status().message()).find("gamma"), std::string::npos);
}

TEST(TokenAuthTest, RejectsMalformedFilesNamingTheLine) {
  struct Case {
    const char* text;
    const char* needle;
  };
  for (const Case& c :
       {Case{"", "no tokens"}, Case{"# only comments\n", "no tokens"},
        Case{"short tenant\n", "line 1"}, Case{"ok-token-0123456789abc\n", "line 1"},
        Case{"ok-token-0123456789abc t1 extra\n", "line 1"},
        Case{"ok-token-0123456789abc t/1\n", "tenant"},
        Case{"ok-token-0123456789abc t1\nok-token-0123456789abc t2\n", "line 2: duplicate"}}) {
    absl::StatusOr<TokenAuth> auth = TokenAuth::Parse(c.text);
    ASSERT_FALSE(auth.ok()) << c.text;
    EXPECT_EQ(auth.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(auth.status().message()).find(c.needle), std::string::npos)
        << auth.status();
  }
}

TEST(TokenAuthTest, LoadsFilesAndNamesThePathOnErrors) {
  ctxmem::testing::TempDir dir;
  ASSERT_TRUE(ctxmem::testing::WriteBytes(dir.File("tokens"), kTokens));
  absl::StatusOr<TokenAuth> auth = TokenAuth::LoadFile(dir.File("tokens"));
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_EQ(*auth->Authenticate("Bearer alpha-token-0123456789"), "tenant-a");

  absl::StatusOr<TokenAuth> missing = TokenAuth::LoadFile(dir.File("nope"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(ctxmem::testing::WriteBytes(dir.File("bad"), "x y z\n"));
  absl::StatusOr<TokenAuth> bad = TokenAuth::LoadFile(dir.File("bad"));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad.status().message()).find(dir.File("bad")), std::string::npos);
}

TEST(TokenAuthTest, AuthOffOnlyOnLoopbackUnlessExplicit) {
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1:50051"));
  EXPECT_TRUE(IsLoopbackAddress("127.1.2.3:0"));
  EXPECT_TRUE(IsLoopbackAddress("localhost:1"));
  EXPECT_TRUE(IsLoopbackAddress("[::1]:50051"));
  EXPECT_FALSE(IsLoopbackAddress("0.0.0.0:50051"));
  EXPECT_FALSE(IsLoopbackAddress("[::]:50051"));
  EXPECT_FALSE(IsLoopbackAddress("10.0.0.1:50051"));
  EXPECT_FALSE(IsLoopbackAddress("128.0.0.1:50051"));

  EXPECT_TRUE(CheckAuthPolicy("127.0.0.1:1", /*auth_enabled=*/false, false).ok());
  EXPECT_TRUE(CheckAuthPolicy("0.0.0.0:1", /*auth_enabled=*/true, false).ok());
  EXPECT_TRUE(CheckAuthPolicy("0.0.0.0:1", false, /*allow_insecure_remote=*/true).ok());
  absl::Status refused = CheckAuthPolicy("0.0.0.0:1", false, false);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(refused.message()).find("--tokens-file"), std::string::npos);
}

}  // namespace
}  // namespace ctxmem::service
