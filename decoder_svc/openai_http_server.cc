#include "decoder_svc/openai_http_server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/service/generate_call.h"
#include "common/service/openai_request.h"
#include "common/service/openai_response.h"
#include "common/service/request_id.h"
#include "common/service/service_log.h"

namespace ctxmem::decoder {
namespace {

using service::OpenAiEndpoint;

constexpr char kJson[] = "application/json";

// What one request's handler, its SSE content provider and its GenerateCall share. The call's
// sink holds it until on_finish; the provider until cpp-httplib drops the response.
struct CallState {
  absl::Mutex mu;
  std::deque<v1::GenerateEvent> events ABSL_GUARDED_BY(mu);  // not yet written
  bool finished ABSL_GUARDED_BY(mu) = false;                 // on_finish ran
  absl::Status status ABSL_GUARDED_BY(mu);                   // the call's, once finished
  std::atomic<bool> cancelled{false};                        // the client went away

  bool HasNews() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return finished || !events.empty(); }
};

void ReplyError(httplib::Response& res, const absl::Status& status) {
  res.status = service::HttpStatusOf(status);
  res.set_content(service::ErrorBody(status), kJson);
}

// "host:port" -> host (brackets of IPv6 dropped) and port.
absl::Status SplitAddress(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), port) || *port < 0 || *port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-listen '", address, "' must be HOST:PORT (port 0 = any free one)"));
  }
  *host = address.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return absl::OkStatus();
}

// Streams a started call as server-sent events: cpp-httplib calls it on the handler's thread
// until it calls sink.done() or returns false (the client is gone: the call is cancelled).
class EventStream {
 public:
  EventStream(std::shared_ptr<CallState> state, service::OpenAiResponseHeader header,
              bool include_usage)
      : state_(std::move(state)), header_(std::move(header)), include_usage_(include_usage) {}

  bool operator()(size_t /*offset*/, httplib::DataSink& sink) {
    std::deque<v1::GenerateEvent> events;
    bool finished = false;
    absl::Status status;
    {
      absl::MutexLock lock(&state_->mu, absl::Condition(state_.get(), &CallState::HasNews));
      events.swap(state_->events);
      finished = state_->finished;
      status = state_->status;
    }
    std::string out;
    if (!role_sent_ && header_.endpoint == OpenAiEndpoint::kChatCompletions) {
      out += service::RoleChunkEvent(header_);
      role_sent_ = true;
    }
    for (const v1::GenerateEvent& event : events) {
      if (event.has_delta() && !event.delta().text().empty()) {
        out += service::TextChunkEvent(header_, event.delta().text());
      } else if (event.has_done()) {
        out += service::FinishChunkEvent(header_, event.done());
        if (include_usage_) out += service::UsageChunkEvent(header_, event.done());
      }
    }
    if (finished) {
      if (!status.ok()) out += service::ErrorEvent(status);
      out += service::DoneEvent();
    }
    if (!out.empty() && !sink.write(out.data(), out.size())) {
      state_->cancelled = true;
      return false;
    }
    if (finished) sink.done();
    return true;
  }

 private:
  std::shared_ptr<CallState> state_;
  service::OpenAiResponseHeader header_;
  bool include_usage_;
  bool role_sent_ = false;
};

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

OpenAiHttpServer::OpenAiHttpServer(const service::DecoderDeps& deps, OpenAiHttpOptions options)
    : deps_(deps), options_(std::move(options)), created_(UnixSeconds()) {
  const service::ServerTlsOptions& tls = options_.tls;
  if (tls.enabled()) {
    server_ = std::make_unique<httplib::SSLServer>(
        tls.cert_file.c_str(), tls.key_file.c_str(),
        tls.client_ca_file.empty() ? nullptr : tls.client_ca_file.c_str());
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
}

OpenAiHttpServer::~OpenAiHttpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> OpenAiHttpServer::Start(
    const service::DecoderDeps& deps, OpenAiHttpOptions options) {
  std::string host;
  int port = 0;
  if (absl::Status s = SplitAddress(options.listen_address, &host, &port); !s.ok()) return s;
  std::unique_ptr<OpenAiHttpServer> server(new OpenAiHttpServer(deps, std::move(options)));
  if (!server->server_->is_valid()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HTTPS: cannot load --tls-cert ", server->options_.tls.cert_file, " / --tls-key",
        server->options_.tls.client_ca_file.empty()
            ? ""
            : absl::StrCat(" / --tls-client-ca ", server->options_.tls.client_ca_file)));
  }
  server->Route();
  httplib::Server& http = *server->server_;
  if (port == 0) {
    port = http.bind_to_any_port(host);
  } else if (!http.bind_to_port(host, port)) {
    port = -1;
  }
  if (port < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for HTTP on ", server->options_.listen_address));
  }
  server->port_ = port;
  server->thread_ = std::thread([&http] { http.listen_after_bind(); });
  // stop() is ignored until the server runs: wait for it (a few ms) so Stop() always works.
  while (!http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return server;
}

void OpenAiHttpServer::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

void OpenAiHttpServer::Route() {
  httplib::Server& http = *server_;
  const int n_threads = std::max(1, options_.n_threads);
  http.new_task_queue = [n_threads] { return new httplib::ThreadPool(n_threads); };
  http.set_payload_max_length(static_cast<size_t>(options_.max_request_bytes));

  // Errors cpp-httplib makes itself (unknown route 404, body over the limit 413, malformed
  // HTTP 400) get an OpenAI-shaped body too; ours already have one.
  http.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        absl::Status status;
        if (res.status == 404) {
          status = absl::NotFoundError(
              absl::StrCat("no route ", req.method, " ", req.path, " (see docs/http_api.md)"));
        } else if (res.status == 413) {
          status = absl::ResourceExhaustedError("the request body is over --max-request-bytes");
        } else {
          status = absl::InvalidArgumentError(absl::StrCat("HTTP error ", res.status));
        }
        const int code = res.status;
        res.set_content(service::ErrorBody(status), kJson);
        res.status = code;
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        ReplyError(res, absl::InternalError("internal error"));
      });

  http.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
    absl::StatusOr<std::string> tenant =
        deps_.auth->Authenticate(req.get_header_value("Authorization"));
    deps_.endpoint->CountRequest("Models", static_cast<grpc::StatusCode>(tenant.status().code()));
    if (!tenant.ok()) return ReplyError(res, tenant.status());
    res.set_content(service::ModelsBody(options_.model_name, created_), kJson);
  });

  const auto generate = [this](OpenAiEndpoint endpoint) {
    return [this, endpoint](const httplib::Request& req, httplib::Response& res) {
      absl::StatusOr<service::OpenAiRequest> parsed =
          service::ParseOpenAiRequest(endpoint, req.body, options_.model_name);
      auto state = std::make_shared<CallState>();
      service::GenerateCallOptions call;
      call.method =
          endpoint == OpenAiEndpoint::kChatCompletions ? "ChatCompletions" : "Completions";
      call.authorization = req.get_header_value("Authorization");
      call.request_id = service::NewRequestId();
      call.cancelled = &state->cancelled;
      const service::OpenAiResponseHeader header{
          endpoint, service::OpenAiResponseId(endpoint, call.request_id), UnixSeconds(),
          parsed.ok() ? parsed->model : ""};
      const bool stream = parsed.ok() && parsed->stream;
      const bool include_usage = parsed.ok() && parsed->include_usage;
      res.set_header("x-request-id", call.request_id);
      absl::StatusOr<v1::GenerateRequest> request =
          parsed.ok() ? absl::StatusOr<v1::GenerateRequest>(std::move(parsed->generate))
                      : parsed.status();
      service::GenerateCall::Start(deps_, std::move(call), std::move(request),
                                   {.on_event =
                                        [state](v1::GenerateEvent event) {
                                          absl::MutexLock lock(&state->mu);
                                          state->events.push_back(std::move(event));
                                        },
                                    .on_finish =
                                        [state](const absl::Status& status) {
                                          absl::MutexLock lock(&state->mu);
                                          state->finished = true;
                                          state->status = status;
                                        }});

      absl::MutexLock lock(&state->mu);
      if (!stream) {
        // cpp-httplib cannot tell that a waiting client left: the call runs to its end.
        state->mu.Await(absl::Condition(&state->finished));
        if (!state->status.ok()) return ReplyError(res, state->status);
        for (const v1::GenerateEvent& event : state->events) {
          if (event.has_done()) return res.set_content(CompletionBody(header, event.done()), kJson);
        }
        return ReplyError(res, absl::InternalError("generation ended without a result"));
      }
      // Errors before the first token (auth, validation, memories, limits) get their HTTP
      // status; once events flow the status is 200 and a late error is an SSE error event.
      state->mu.Await(absl::Condition(state.get(), &CallState::HasNews));
      if (state->events.empty() && !state->status.ok()) return ReplyError(res, state->status);
      res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider(
          "text/event-stream", EventStream(state, header, include_usage), [state](bool success) {
            if (!success) state->cancelled = true;
          });
    };
  };
  http.Post("/v1/chat/completions", generate(OpenAiEndpoint::kChatCompletions));
  http.Post("/v1/completions", generate(OpenAiEndpoint::kCompletions));
}

}  // namespace ctxmem::decoder
