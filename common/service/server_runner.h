#pragma once
// ServerRunner: what both servers do around their gRPC services (STYLE.md rule 35): listen
// with the given credentials and message limit, register the standard health service
// (grpc.health.v1.Health, SERVING while up) and server reflection, announce the bound port,
// and on SIGTERM/SIGINT mark NOT_SERVING, stop accepting and drain in-flight calls for a grace
// period before cancelling them.
// Thread-safety: Start/Wait from one thread; RequestShutdown from any thread.

#include <absl/status/statusor.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/support/status.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace ctxmem::service {

struct ServerRunnerOptions {
  std::string listen_address = "127.0.0.1:0";            // port 0 = any free port (see port())
  std::shared_ptr<grpc::ServerCredentials> credentials;  // null = plaintext
  int max_receive_message_bytes = 4 << 20;  // larger requests: RESOURCE_EXHAUSTED by gRPC
  int max_send_message_bytes = 4 << 20;
  std::chrono::milliseconds drain_grace{10000};  // in-flight calls get this long at shutdown
};

class ServerRunner {
 public:
  // Builds and starts the server with `services` (borrowed; must outlive the runner).
  // Unavailable naming the address if it cannot bind.
  static absl::StatusOr<std::unique_ptr<ServerRunner>> Start(
      const ServerRunnerOptions& options, const std::vector<grpc::Service*>& services);
  ~ServerRunner();

  int port() const { return port_; }
  grpc::Server* server() { return server_.get(); }

  // Installs SIGTERM/SIGINT handlers that call RequestShutdown(), then blocks until the
  // server has shut down (signal or RequestShutdown).
  void WaitForShutdownSignal();
  // Marks health NOT_SERVING, then Shutdown(deadline = now + drain_grace). Idempotent.
  void RequestShutdown();

 private:
  ServerRunner() = default;

  ServerRunnerOptions options_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<bool> shutdown_requested_{false};
};

}  // namespace ctxmem::service
