#include "common/service/metrics_endpoint.h"

#include <absl/strings/str_cat.h>
#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>

#include <exception>
#include <vector>

#include "common/compress/peak_rss.h"

namespace ctxmem::service {
namespace {

// Refreshes the process memory gauges whenever the registry is scraped.
class MemoryRefresher final : public prometheus::Collectable {
 public:
  explicit MemoryRefresher(MetricsEndpoint* endpoint) : endpoint_(endpoint) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    endpoint_->UpdateProcessMemory();
    return {};
  }

 private:
  MetricsEndpoint* endpoint_;  // owns this collectable
};

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& listen_address) {
  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
  endpoint->registry_ = std::make_shared<prometheus::Registry>();
  endpoint->requests_ = &prometheus::BuildCounter()
                             .Name("ctxmem_requests_total")
                             .Help("Finished RPCs by method and gRPC status code")
                             .Register(*endpoint->registry_);
  auto& memory = prometheus::BuildGauge()
                     .Name("ctxmem_process_resident_bytes")
                     .Help("Resident set size of the server process, bytes")
                     .Register(*endpoint->registry_);
  endpoint->resident_bytes_ = &memory.Add({});
  auto& peak = prometheus::BuildGauge()
                   .Name("ctxmem_process_peak_resident_bytes")
                   .Help("Peak resident set size of the server process since start, bytes")
                   .Register(*endpoint->registry_);
  endpoint->peak_resident_bytes_ = &peak.Add({});
  endpoint->memory_refresher_ = std::make_shared<MemoryRefresher>(endpoint.get());
  endpoint->UpdateProcessMemory();
  if (listen_address.empty()) return endpoint;
  // civetweb reports bind failures by throwing from the Exposer constructor; this is the one
  // place we catch, so no exception leaves this function.
  try {
    endpoint->exposer_ = std::make_unique<prometheus::Exposer>(listen_address, 2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve /metrics on ", listen_address, ": ", e.what()));
  }
  endpoint->exposer_->RegisterCollectable(endpoint->memory_refresher_);
  endpoint->exposer_->RegisterCollectable(endpoint->registry_);
  std::vector<int> ports = endpoint->exposer_->GetListeningPorts();
  endpoint->port_ = ports.empty() ? 0 : ports[0];
  return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() = default;

void MetricsEndpoint::CountRequest(absl::string_view method, grpc::StatusCode code) {
  requests_->Add({{"method", std::string(method)}, {"code", std::string(StatusCodeName(code))}})
      .Increment();
}

void MetricsEndpoint::UpdateProcessMemory() {
  absl::StatusOr<int64_t> rss = compress::CurrentRssBytes();
  if (rss.ok()) resident_bytes_->Set(static_cast<double>(*rss));
  absl::StatusOr<int64_t> peak = compress::PeakRssBytes();
  if (peak.ok()) peak_resident_bytes_->Set(static_cast<double>(*peak));
}

std::string MetricsEndpoint::Render() const {
  const_cast<MetricsEndpoint*>(this)->UpdateProcessMemory();
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

absl::string_view StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

}  // namespace ctxmem::service
