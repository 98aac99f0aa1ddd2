#pragma once
// MetricsEndpoint: the Prometheus /metrics HTTP endpoint of a server (prometheus-cpp's
// Exposer) with the metrics every ctxmem server has: requests by method and status code, and
// the process's memory (resident bytes now and peak). Server-specific families are added to
// registry() by CompressorMetrics / DecoderMetrics.
// Thread-safety: thread-safe (prometheus-cpp metrics are atomic).

#include <absl/status/statusor.h>
#include <absl/strings/string_view.h>
#include <grpcpp/support/status.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace ctxmem::service {

class MetricsEndpoint {
 public:
  // Serves /metrics on `listen_address` ("127.0.0.1:9100"; port 0 picks a free one, see
  // port()). "" = no HTTP endpoint (the registry still works, e.g. for tests).
  // Unavailable naming the address if it cannot bind.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(const std::string& listen_address);
  ~MetricsEndpoint();

  prometheus::Registry& registry() { return *registry_; }
  std::shared_ptr<prometheus::Registry> shared_registry() { return registry_; }
  int port() const { return port_; }  // 0 without an HTTP endpoint

  // ctxmem_requests_total{method, code}: called once per finished RPC.
  void CountRequest(absl::string_view method, grpc::StatusCode code);
  // Refreshes ctxmem_process_resident_bytes / ctxmem_process_peak_resident_bytes (also done on
  // every scrape through a collectable).
  void UpdateProcessMemory();

  // The current text exposition of every family (what /metrics returns), for tests and logs.
  std::string Render() const;

 private:
  MetricsEndpoint() = default;

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;  // null without an HTTP endpoint
  int port_ = 0;
  prometheus::Family<prometheus::Counter>* requests_ = nullptr;
  prometheus::Gauge* resident_bytes_ = nullptr;
  prometheus::Gauge* peak_resident_bytes_ = nullptr;
  std::shared_ptr<prometheus::Collectable> memory_refresher_;
};

// Name of a status code as gRPC spells it ("OK", "NOT_FOUND", ...).
absl::string_view StatusCodeName(grpc::StatusCode code);

}  // namespace ctxmem::service
