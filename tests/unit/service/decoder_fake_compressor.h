#pragma once
// A fake compressor for the decoder's client tests: serves GetMemory and StatMemory from blobs
// held in memory, per tenant, with faults to inject (broken streams, a wrong final checksum,
// failing replicas). Runs a real gRPC server on an ephemeral loopback port.
// Thread-safety: configure before the RPCs run; counters are atomic.

#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/blob/sha256.h"
#include "ctxmem/v1/compressor.grpc.pb.h"

namespace ctxmem::service::testing {

class FakeCompressor final : public v1::Compressor::Service {
 public:
  // token -> tenant; empty = no auth (every caller is "default").
  std::map<std::string, std::string> tokens;
  std::map<std::pair<std::string, std::string>, std::string> blobs;  // (tenant, id) -> bytes
  uint32_t chunk_bytes = 1024;
  std::atomic<int> break_streams{0};                  // this many GetMemory streams fail mid-way
  bool wrong_checksum = false;                        // the final chunk carries a wrong sha256
  grpc::StatusCode fail_code = grpc::StatusCode::OK;  // every RPC fails with this when set
  std::atomic<int> get_calls{0};
  std::atomic<int> stat_calls{0};
  std::atomic<uint64_t> last_offset{0};

  void Add(const std::string& tenant, const std::string& id, std::string bytes) {
    blobs[{tenant, id}] = std::move(bytes);
  }

  // Starts listening on 127.0.0.1:<ephemeral>.
  bool Start() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    return server_ != nullptr && port_ != 0;
  }
  void Stop() {
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
  }
  ~FakeCompressor() override { Stop(); }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  grpc::Status GetMemory(grpc::ServerContext* context, const v1::GetMemoryRequest* request,
                         grpc::ServerWriter<v1::BlobChunk>* writer) override {
    ++get_calls;
    last_offset = request->offset();
    std::string tenant;
    if (grpc::Status s = Authenticate(*context, &tenant); !s.ok()) return s;
    auto it = blobs.find({tenant, request->memory_id()});
    if (it == blobs.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such memory");
    const std::string& bytes = it->second;
    if (request->offset() > bytes.size()) {
      return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "offset past the end");
    }
    const bool do_break = break_streams.fetch_sub(1) > 0;
    int sent = 0;
    for (uint64_t off = request->offset(); off < bytes.size(); off += chunk_bytes) {
      if (do_break && sent == 2) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection reset (injected)");
      }
      v1::BlobChunk chunk;
      chunk.set_offset(off);
      chunk.set_total_bytes(bytes.size());
      chunk.set_data(bytes.substr(off, chunk_bytes));
      if (off + chunk_bytes >= bytes.size()) {
        auto sha = blob::Sha256Hex(bytes);
        chunk.set_sha256(wrong_checksum ? std::string(64, 'a') : sha.value_or(""));
      }
      writer->Write(chunk);
      ++sent;
    }
    return grpc::Status::OK;
  }

  grpc::Status StatMemory(grpc::ServerContext* context, const v1::StatMemoryRequest* request,
                          v1::MemoryInfo* info) override {
    ++stat_calls;
    std::string tenant;
    if (grpc::Status s = Authenticate(*context, &tenant); !s.ok()) return s;
    if (!blobs.contains({tenant, request->memory_id()})) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such memory");
    }
    info->set_memory_id(request->memory_id());
    return grpc::Status::OK;
  }

 private:
  grpc::Status Authenticate(const grpc::ServerContext& context, std::string* tenant) {
    if (fail_code != grpc::StatusCode::OK) return grpc::Status(fail_code, "injected failure");
    if (tokens.empty()) {
      *tenant = "default";
      return grpc::Status::OK;
    }
    auto it = context.client_metadata().find("authorization");
    if (it == context.client_metadata().end()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing bearer token");
    }
    const std::string value(it->second.data(), it->second.size());
    auto t = tokens.find(value.rfind("Bearer ", 0) == 0 ? value.substr(7) : "");
    if (t == tokens.end()) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "unknown token");
    *tenant = t->second;
    return grpc::Status::OK;
  }

  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace ctxmem::service::testing
