#include "common/service/server_runner.h"

#include <absl/strings/str_cat.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <signal.h>

#include <atomic>
#include <thread>

namespace ctxmem::service {
namespace {

std::atomic<bool> g_signalled{false};
void OnSignal(int) { g_signalled.store(true); }

}  // namespace

absl::StatusOr<std::unique_ptr<ServerRunner>> ServerRunner::Start(
    const ServerRunnerOptions& options, const std::vector<grpc::Service*>& services) {
  std::unique_ptr<ServerRunner> runner(new ServerRunner());
  runner->options_ = options;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> credentials =
      options.credentials ? options.credentials : grpc::InsecureServerCredentials();
  builder.AddListeningPort(options.listen_address, credentials, &runner->port_);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(options.max_send_message_bytes);
  for (grpc::Service* service : services) builder.RegisterService(service);
  runner->server_ = builder.BuildAndStart();
  if (runner->server_ == nullptr || runner->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen_address,
                                               " (address in use or not resolvable?)"));
  }
  if (grpc::HealthCheckServiceInterface* health = runner->server_->GetHealthCheckService()) {
    health->SetServingStatus(true);
  }
  return runner;
}

ServerRunner::~ServerRunner() { RequestShutdown(); }

void ServerRunner::WaitForShutdownSignal() {
  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  // A signal handler may only set a flag; this thread turns it into a shutdown.
  std::thread watcher([this] {
    while (!g_signalled.load() && server_ != nullptr) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    RequestShutdown();
  });
  server_->Wait();
  g_signalled.store(true);  // Wait() also returns after a RequestShutdown() from elsewhere
  watcher.join();
}

void ServerRunner::RequestShutdown() {
  if (server_ == nullptr || shutdown_requested_.exchange(true)) return;
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->SetServingStatus(false);
  }
  server_->Shutdown(std::chrono::system_clock::now() + options_.drain_grace);
}

}  // namespace ctxmem::service
