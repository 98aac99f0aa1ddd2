#include "common/service/server_flags.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ctxmem::service {
namespace {

// Parses `args` (without the program name) into flags registered by AddServerFlags.
bool Parse(ServerFlags* flags, std::vector<std::string> args) {
  CLI::App app;
  AddServerFlags(app, flags);
  std::vector<const char*> argv = {"server"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError&) {
    return false;
  }
  return true;
}

TEST(ServerFlagsTest, KeepsTheServersDefaultsAndParsesEveryOption) {
  ServerFlags flags;
  flags.listen = "127.0.0.1:50051";
  ASSERT_TRUE(Parse(&flags, {"--model", "m.gguf"}));
  EXPECT_EQ(flags.listen, "127.0.0.1:50051");
  EXPECT_EQ(flags.model, "m.gguf");
  EXPECT_TRUE(flags.Validate().ok());

  ASSERT_TRUE(Parse(&flags, {"--listen",
                             "0.0.0.0:1",
                             "--metrics-listen",
                             "",
                             "--model",
                             "m",
                             "--threads",
                             "3",
                             "--max-request-bytes",
                             "2048",
                             "--max-streams-per-tenant",
                             "7",
                             "--tokens-file",
                             "t",
                             "--allow-insecure-remote",
                             "--tls-cert",
                             "c",
                             "--tls-key",
                             "k",
                             "--tls-client-ca",
                             "ca",
                             "--log-level",
                             "debug",
                             "--log-content"}));
  EXPECT_EQ(flags.listen, "0.0.0.0:1");
  EXPECT_EQ(flags.metrics_listen, "");
  EXPECT_EQ(flags.threads, 3);
  EXPECT_EQ(flags.max_request_bytes, 2048);
  EXPECT_EQ(flags.max_streams_per_tenant, 7);
  EXPECT_EQ(flags.tokens_file, "t");
  EXPECT_TRUE(flags.allow_insecure_remote);
  EXPECT_EQ(flags.tls_client_ca, "ca");
  EXPECT_EQ(flags.log_level, "debug");
  EXPECT_TRUE(flags.log_content);
  EXPECT_FALSE(Parse(&flags, {"--no-such-flag"}));
}

TEST(ServerFlagsTest, ValidateNamesTheFlag) {
  struct Case {
    std::vector<std::string> args;
    const char* flag;
  };
  for (const Case& c :
       {Case{{"--model", "m", "--threads", "0"}, "--threads"},
        Case{{"--model", "m", "--max-request-bytes", "100"}, "--max-request-bytes"},
        Case{{"--model", "m", "--max-request-bytes", "4294967296"}, "--max-request-bytes"},
        Case{{"--model", "m", "--max-streams-per-tenant", "0"}, "--max-streams-per-tenant"},
        Case{{"--model", ""}, "--model"}}) {
    ServerFlags flags;
    ASSERT_TRUE(Parse(&flags, c.args));
    absl::Status status = flags.Validate();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.flag;
    EXPECT_NE(std::string(status.message()).find(c.flag), std::string::npos) << status;
  }
}

}  // namespace
}  // namespace ctxmem::service
