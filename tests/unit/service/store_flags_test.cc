#include "common/service/store_flags.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "tests/unit/test_files.h"

namespace ctxmem::service {
namespace {

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(StoreFlagsTest, ParsesTheFlagsOnBothServers) {
  CLI::App app;
  StoreFlags flags;
  AddStoreFlags(app, &flags);
  const char* argv[] = {"x",
                        "--store-url",
                        "s3://bkt/a/b",
                        "--s3-endpoint",
                        "http://h:8333",
                        "--s3-region",
                        "eu-west-1",
                        "--s3-max-attempts",
                        "7"};
  app.parse(9, const_cast<char**>(argv));
  EXPECT_TRUE(flags.s3());
  EXPECT_EQ(flags.s3_region, "eu-west-1");
  const blob::S3BlobStoreOptions options =
      S3StoreOptionsFromFlags(
          flags, "/tmp/x", FakeEnv({{"AWS_ACCESS_KEY_ID", "AK"}, {"AWS_SECRET_ACCESS_KEY", "SK"}}))
          .value();
  EXPECT_EQ(options.client.bucket, "bkt");
  EXPECT_EQ(options.prefix, "a/b");
  EXPECT_EQ(options.client.endpoint, "http://h:8333");
  EXPECT_EQ(options.client.region, "eu-west-1");
  EXPECT_EQ(options.client.max_attempts, 7);
  EXPECT_EQ(options.client.credentials.access_key_id, "AK");
  EXPECT_EQ(options.client.credentials.secret_access_key, "SK");
  EXPECT_EQ(options.staging_dir, "/tmp/x");
}

TEST(StoreFlagsTest, MissingCredentialsOrBadUrlAreInvalidArgument) {
  StoreFlags flags;
  flags.store_url = "s3://bkt/p";
  const absl::Status none = S3StoreOptionsFromFlags(flags, "/tmp/x", FakeEnv({})).status();
  EXPECT_EQ(none.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(none.message().find("AWS_ACCESS_KEY_ID"), absl::string_view::npos) << none;
  flags.store_url = "s3://Bad_Bucket/p";
  EXPECT_EQ(
      S3StoreOptionsFromFlags(flags, "/tmp/x",
                              FakeEnv({{"AWS_ACCESS_KEY_ID", "a"}, {"AWS_SECRET_ACCESS_KEY", "b"}}))
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(StoreFlagsTest, ReadsTheSharedCredentialsFile) {
  const std::string text =
      "# comment\n[default]\naws_access_key_id = AKD\naws_secret_access_key=SKD\n\n"
      "[other]\naws_access_key_id=AKO\naws_secret_access_key = SKO\naws_session_token = T\n";
  const blob::SigV4Credentials other = ParseAwsCredentials(text, "other").value();
  EXPECT_EQ(other.access_key_id, "AKO");
  EXPECT_EQ(other.secret_access_key, "SKO");
  EXPECT_EQ(other.session_token, "T");
  EXPECT_EQ(ParseAwsCredentials(text, "default")->access_key_id, "AKD");
  EXPECT_EQ(ParseAwsCredentials(text, "nope").status().code(), absl::StatusCode::kInvalidArgument);

  ctxmem::testing::TempDir dir;
  ASSERT_TRUE(ctxmem::testing::WriteBytes(dir.File("credentials"), text));
  StoreFlags flags;
  flags.store_url = "s3://bkt";
  flags.s3_credentials_file = dir.File("credentials");
  flags.s3_profile = "other";
  const blob::S3BlobStoreOptions options =
      S3StoreOptionsFromFlags(flags, "/tmp/x", FakeEnv({{"AWS_ACCESS_KEY_ID", "ENV"}})).value();
  EXPECT_EQ(options.client.credentials.access_key_id, "AKO");  // the file wins
  flags.s3_credentials_file = dir.File("missing");
  EXPECT_EQ(S3StoreOptionsFromFlags(flags, "/tmp/x", FakeEnv({})).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ctxmem::service
