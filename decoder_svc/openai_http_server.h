#pragma once
// OpenAiHttpServer: decoder_svc's OpenAI-compatible HTTP front (--http-listen; docs/http_api.md)
// on cpp-httplib: POST /v1/chat/completions and /v1/completions (JSON or server-sent events),
// GET /v1/models. A thin adapter like DecoderService: each request body becomes a
// v1::GenerateRequest (ParseOpenAiRequest) and runs through GenerateCall, so authentication
// ("Authorization: Bearer <token>" -> tenant), limits, metrics and errors are the gRPC path's.
// Handlers run on cpp-httplib's own thread pool and wait there for their call (the model work
// runs on the decoder's WorkQueue).
// Thread-safety: Start/Stop from one thread; the handlers are thread-safe.

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/service/decoder_deps.h"
#include "common/service/tls_credentials.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace ctxmem::decoder {

struct OpenAiHttpOptions {
  std::string listen_address;           // "host:port"; port 0 picks a free one (see port())
  std::string model_name;               // what /v1/models lists and requests must name
  int64_t max_request_bytes = 4 << 20;  // larger bodies: 413
  int n_threads = 16;                   // connections served at once (keep-alive holds one)
  service::ServerTlsOptions tls;        // the gRPC server's: HTTPS (mTLS with a client CA)
};

class OpenAiHttpServer {
 public:
  // Binds and starts serving on a thread of its own. InvalidArgument for a malformed address
  // or TLS files that do not load, Unavailable naming the address when it cannot bind. `deps` is
  // borrowed and must outlive the server.
  static absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> Start(const service::DecoderDeps& deps,
                                                                 OpenAiHttpOptions options);
  OpenAiHttpServer(const OpenAiHttpServer&) = delete;
  OpenAiHttpServer& operator=(const OpenAiHttpServer&) = delete;
  ~OpenAiHttpServer();  // Stop()

  int port() const { return port_; }

  // Stops accepting connections and waits for the handlers, which wait for their calls (the
  // work queue must still be running). Idempotent.
  void Stop();

 private:
  OpenAiHttpServer(const service::DecoderDeps& deps, OpenAiHttpOptions options);
  void Route();

  const service::DecoderDeps& deps_;
  const OpenAiHttpOptions options_;
  const int64_t created_;  // unix seconds at start: the model's "created"
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;  // runs listen_after_bind()
  int port_ = 0;
};

}  // namespace ctxmem::decoder
