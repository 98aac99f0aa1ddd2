#include "common/blob/s3_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <ctime>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/blob/s3_xml.h"
#include "common/blob/sha256.h"
#include "common/status.h"

namespace ctxmem::blob {

struct S3Client::Request {
  std::string method = "GET";
  std::string op;   // S3Attempt::op: "put", "get", ...
  std::string key;  // "" = the bucket itself
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;  // sent and signed
  absl::string_view body;                                    // borrowed; must outlive Execute
  std::string what;                                          // for error messages: "PUT key"
  // Where body bytes of a 200/206 answer go instead of Response::body (GetObject); it sees the
  // answer's headers too.
  std::function<void(absl::string_view, const Response&)> sink;
  // Called before every attempt (GetObject moves its Range there).
  std::function<void(Request&)> before_attempt;
  std::string payload_sha256;  // filled by Execute
};

struct S3Client::Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;
};

namespace {

using Clock = std::chrono::steady_clock;

// State one curl transfer writes into.
struct Transfer {
  S3Client::Response* response;
  const std::function<void(absl::string_view, const S3Client::Response&)>* sink;
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  absl::string_view line(data, size * n);
  if (absl::StartsWith(line, "HTTP/")) {  // a new response (after 100 Continue, say)
    t->response->headers.clear();
    const size_t space = line.find(' ');
    long status = 0;
    if (space != absl::string_view::npos && absl::SimpleAtoi(line.substr(space + 1, 3), &status)) {
      t->response->status = status;
    }
    return size * n;
  }
  const size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    t->response->headers[absl::AsciiStrToLower(line.substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const absl::string_view bytes(data, size * n);
  const long status = t->response->status;
  if (*t->sink && (status == 200 || status == 206)) {
    (*t->sink)(bytes, *t->response);
  } else if (t->response->body.size() < (1 << 20)) {  // error bodies are small; cap them
    t->response->body.append(bytes.data(), bytes.size());
  }
  return size * n;
}

bool IsRetryableStatus(long status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

// The status for an HTTP answer that is not a success.
absl::Status StatusOf(const S3Client::Response& r, absl::string_view what) {
  const std::string code = XmlText(r.body, "Code").value_or("");
  const std::string message = XmlText(r.body, "Message").value_or("");
  std::string text = absl::StrCat(what, ": HTTP ", r.status);
  if (!code.empty()) absl::StrAppend(&text, " ", code);
  if (!message.empty()) absl::StrAppend(&text, ": ", message.substr(0, 300));
  switch (r.status) {
    case 404:
      return absl::NotFoundError(text);
    case 412:
      return absl::FailedPreconditionError(text);
    case 409:
      return absl::AbortedError(text);
    case 401:
      return absl::UnauthenticatedError(text);
    case 403:
      return absl::PermissionDeniedError(text);
    case 416:
      return absl::OutOfRangeError(text);
    default:
      break;
  }
  if (r.status >= 500 || r.status == 429) return absl::UnavailableError(text);
  return absl::InvalidArgumentError(text);
}

bool IsSuccess(long status) { return status >= 200 && status < 300; }

// "Wed, 12 Oct 2009 17:50:00 GMT" or "2009-10-12T17:50:30.000Z" -> Unix ms; 0 if neither.
int64_t ParseTime(const std::string& text) {
  std::tm tm = {};
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (end == nullptr) end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return 0;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

S3Object ObjectFromHeaders(const std::string& key, const S3Client::Response& r) {
  S3Object object;
  object.key = key;
  auto it = r.headers.find("content-range");  // "bytes 0-9/1234"
  uint64_t size = 0;
  if (it != r.headers.end() && it->second.rfind('/') != std::string::npos &&
      absl::SimpleAtoi(it->second.substr(it->second.rfind('/') + 1), &size)) {
    object.size = size;
  } else if ((it = r.headers.find("content-length")) != r.headers.end() &&
             absl::SimpleAtoi(it->second, &size)) {
    object.size = size;
  }
  if ((it = r.headers.find("etag")) != r.headers.end()) object.etag = it->second;
  if ((it = r.headers.find("last-modified")) != r.headers.end()) {
    object.last_modified_unix_ms = ParseTime(it->second);
  }
  for (const auto& [name, value] : r.headers) {
    if (absl::StartsWith(name, "x-amz-meta-")) object.metadata[name.substr(11)] = value;
  }
  return object;
}

bool IsValidBucket(absl::string_view bucket) {
  if (bucket.size() < 3 || bucket.size() > 63) return false;
  for (char c : bucket) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '.' || c == '-')) return false;
  }
  return true;
}

}  // namespace

absl::Status S3ClientOptions::Validate() const {
  if (!IsValidBucket(bucket)) {
    return absl::InvalidArgumentError(absl::StrCat("S3 bucket '", bucket.substr(0, 100),
                                                   "' is not 3..63 characters of [a-z0-9.-]"));
  }
  if (!endpoint.empty() && !absl::StartsWith(endpoint, "http://") &&
      !absl::StartsWith(endpoint, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("S3 endpoint '", endpoint, "' is not an http:// or https:// URL"));
  }
  if (region.empty()) return absl::InvalidArgumentError("S3 region is empty");
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    return absl::InvalidArgumentError(
        "S3 credentials are missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or give a "
        "credentials file");
  }
  if (connect_timeout.count() <= 0 || call_timeout.count() <= 0 || stall_seconds <= 0 ||
      max_attempts < 1 || backoff_initial.count() < 0 || backoff_max < backoff_initial) {
    return absl::InvalidArgumentError(absl::StrCat(
        "S3 client limits: connect_timeout_ms=", connect_timeout.count(),
        " call_timeout_ms=", call_timeout.count(), " stall_seconds=", stall_seconds,
        " max_attempts=", max_attempts, " must be positive, backoff_max >= backoff_initial"));
  }
  return absl::OkStatus();
}

void S3Client::CurlDeleter::operator()(void* handle) const {
  curl_easy_cleanup(static_cast<CURL*>(handle));
}

S3Client::S3Client(S3ClientOptions options) : options_(std::move(options)) {
  std::string base = options_.endpoint;
  if (base.empty()) base = absl::StrCat("https://s3.", options_.region, ".amazonaws.com");
  while (absl::EndsWith(base, "/")) base.pop_back();
  const size_t scheme_end = base.find("://") + 3;
  std::string host = base.substr(scheme_end);
  if (options_.virtual_hosted || options_.endpoint.empty()) {
    host = absl::StrCat(options_.bucket, ".", host);
  }
  scheme_host_ = absl::StrCat(base.substr(0, scheme_end), host);
  host_ = host;
}

S3Client::~S3Client() = default;

absl::StatusOr<std::unique_ptr<S3Client>> S3Client::Create(const S3ClientOptions& options) {
  CTXMEM_RETURN_IF_ERROR(options.Validate());
  static std::once_flag once;
  static CURLcode init = CURLE_OK;
  std::call_once(once, [] { init = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (init != CURLE_OK) {
    return absl::InternalError(absl::StrCat("curl_global_init: ", curl_easy_strerror(init)));
  }
  return std::unique_ptr<S3Client>(new S3Client(options));
}

std::string S3Client::Describe() const {
  return absl::StrCat("s3://", options_.bucket, " at ", scheme_host_);
}

S3ClientStats S3Client::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

S3Client::CurlPtr S3Client::TakeHandle() const {
  {
    absl::MutexLock lock(&mu_);
    if (!pool_.empty()) {
      CurlPtr handle = std::move(pool_.back());
      pool_.pop_back();
      return handle;
    }
  }
  return CurlPtr(curl_easy_init());
}

void S3Client::ReturnHandle(CurlPtr handle) const {
  absl::MutexLock lock(&mu_);
  if (static_cast<int>(pool_.size()) < options_.max_pooled_handles) {
    pool_.push_back(std::move(handle));
  }
}

absl::StatusOr<S3Client::Response> S3Client::Attempt(const Request& request) const {
  const Clock::time_point started = Clock::now();
  const bool bucket_only = request.key.empty();
  std::string path;
  if (options_.virtual_hosted || options_.endpoint.empty()) {
    path = absl::StrCat("/", request.key);
  } else {
    path = bucket_only ? absl::StrCat("/", options_.bucket)
                       : absl::StrCat("/", options_.bucket, "/", request.key);
  }
  SigV4Request sign;
  sign.method = request.method;
  sign.path = path;
  sign.query = request.query;
  sign.payload_sha256 = request.payload_sha256;
  const std::string amz_date = AmzDate(std::time(nullptr));
  sign.headers = {
      {"host", host_}, {"x-amz-content-sha256", request.payload_sha256}, {"x-amz-date", amz_date}};
  if (!options_.credentials.session_token.empty()) {
    sign.headers.emplace_back("x-amz-security-token", options_.credentials.session_token);
  }
  for (const auto& header : request.headers) sign.headers.push_back(header);
  SigV4Options sign_options;
  sign_options.region = options_.region;
  CTXMEM_ASSIGN_OR_RETURN(const SigV4Signature signature,
                          SignV4(sign, options_.credentials, sign_options, amz_date));

  std::string url = absl::StrCat(scheme_host_, UriEncode(path, true));
  if (!request.query.empty()) {
    std::vector<std::string> pairs;
    for (const auto& [name, value] : request.query) {
      pairs.push_back(absl::StrCat(UriEncode(name, false), "=", UriEncode(value, false)));
    }
    absl::StrAppend(&url, "?", absl::StrJoin(pairs, "&"));
  }

  CurlPtr handle = TakeHandle();
  if (handle == nullptr) return absl::InternalError("curl_easy_init failed");
  CURL* curl = static_cast<CURL*>(handle.get());
  curl_easy_reset(curl);
  curl_slist* headers = nullptr;
  for (const auto& [name, value] : sign.headers) {
    headers = curl_slist_append(headers, absl::StrCat(name, ": ", value).c_str());
  }
  headers =
      curl_slist_append(headers, absl::StrCat("Authorization: ", signature.authorization).c_str());
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
  if (request.method == "PUT" || request.method == "POST") {
    bool has_type = false;
    for (const auto& header : request.headers) {
      has_type |= absl::EqualsIgnoreCase(header.first, "content-type");
    }
    if (!has_type) headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
  }

  Response response;
  Transfer transfer{&response, &request.sink};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.stall_seconds));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.call_timeout.count()));
  if (options_.max_send_bytes_per_second > 0) {
    curl_easy_setopt(curl, CURLOPT_MAX_SEND_SPEED_LARGE,
                     static_cast<curl_off_t>(options_.max_send_bytes_per_second));
  }
  if (options_.max_recv_bytes_per_second > 0) {
    curl_easy_setopt(curl, CURLOPT_MAX_RECV_SPEED_LARGE,
                     static_cast<curl_off_t>(options_.max_recv_bytes_per_second));
  }
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT" || request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
  } else if (request.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  const CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  {
    absl::MutexLock lock(&mu_);
    ++stats_.n_requests;
  }
  if (options_.observer != nullptr) {
    curl_off_t sent = 0, received = 0;
    curl_easy_getinfo(curl, CURLINFO_SIZE_UPLOAD_T, &sent);
    curl_easy_getinfo(curl, CURLINFO_SIZE_DOWNLOAD_T, &received);
    options_.observer->OnAttempt({request.op, code == CURLE_OK ? response.status : 0L,
                                  static_cast<uint64_t>(sent), static_cast<uint64_t>(received),
                                  std::chrono::duration<double>(Clock::now() - started).count()});
  }
  if (code != CURLE_OK) {
    // The handle may hold a broken connection: drop it rather than pool it.
    return absl::UnavailableError(
        absl::StrCat(request.what, ": ", curl_easy_strerror(code), " (", scheme_host_, ")"));
  }
  ReturnHandle(std::move(handle));
  return response;
}

absl::StatusOr<S3Client::Response> S3Client::Execute(Request& request) const {
  CTXMEM_ASSIGN_OR_RETURN(request.payload_sha256, Sha256Hex(request.body));
  const Clock::time_point deadline = Clock::now() + options_.call_timeout;
  thread_local std::mt19937 rng(std::random_device{}());
  absl::Status last = absl::OkStatus();
  for (int attempt = 1;; ++attempt) {
    if (request.before_attempt) request.before_attempt(request);
    absl::StatusOr<Response> response = Attempt(request);
    if (response.ok() && !IsRetryableStatus(response->status)) return response;
    last = response.ok() ? StatusOf(*response, request.what) : response.status();
    if (!absl::IsUnavailable(last) || attempt >= options_.max_attempts) break;
    const int64_t base = std::min<int64_t>(options_.backoff_max.count(),
                                           options_.backoff_initial.count() << (attempt - 1));
    const auto delay = std::chrono::milliseconds(
        base / 2 + std::uniform_int_distribution<int64_t>(0, std::max<int64_t>(base / 2, 0))(rng));
    if (Clock::now() + delay >= deadline) break;
    {
      absl::MutexLock lock(&mu_);
      ++stats_.n_retries;
    }
    if (options_.observer != nullptr) options_.observer->OnRetry(request.op);
    std::this_thread::sleep_for(delay);
  }
  if (absl::IsUnavailable(last)) {
    return absl::UnavailableError(
        absl::StrCat(last.message(), " (gave up after ", options_.max_attempts, " attempts)"));
  }
  return last;
}

absl::Status S3Client::PutObject(const std::string& key, absl::string_view body,
                                 const std::map<std::string, std::string>& metadata,
                                 bool if_none_match) {
  Request request;
  request.method = "PUT";
  request.key = key;
  request.body = body;
  request.what = absl::StrCat("PUT ", key);
  request.op = "put";
  for (const auto& [name, value] : metadata) {
    request.headers.emplace_back(absl::StrCat("x-amz-meta-", name), value);
  }
  if (if_none_match) request.headers.emplace_back("if-none-match", "*");
  CTXMEM_ASSIGN_OR_RETURN(const Response response, Execute(request));
  if (IsSuccess(response.status)) return absl::OkStatus();
  if (if_none_match && (response.status == 412 || response.status == 409)) {
    return absl::AlreadyExistsError(absl::StrCat(key, " exists"));
  }
  return StatusOf(response, request.what);
}

absl::StatusOr<std::string> S3Client::CreateMultipartUpload(
    const std::string& key, const std::map<std::string, std::string>& metadata) {
  Request request;
  request.method = "POST";
  request.key = key;
  request.query = {{"uploads", ""}};
  request.what = absl::StrCat("CreateMultipartUpload ", key);
  request.op = "create_multipart";
  for (const auto& [name, value] : metadata) {
    request.headers.emplace_back(absl::StrCat("x-amz-meta-", name), value);
  }
  CTXMEM_ASSIGN_OR_RETURN(const Response response, Execute(request));
  if (!IsSuccess(response.status)) return StatusOf(response, request.what);
  std::optional<std::string> id = XmlText(response.body, "UploadId");
  if (!id.has_value() || id->empty()) {
    return absl::UnavailableError(absl::StrCat(request.what, ": no UploadId in the answer"));
  }
  return *id;
}

absl::StatusOr<std::string> S3Client::UploadPart(const std::string& key,
                                                 const std::string& upload_id, int part_number,
                                                 absl::string_view body) {
  Request request;
  request.method = "PUT";
  request.key = key;
  request.query = {{"partNumber", absl::StrCat(part_number)}, {"uploadId", upload_id}};
  request.body = body;
  request.what = absl::StrCat("UploadPart ", key, " #", part_number);
  request.op = "upload_part";
  CTXMEM_ASSIGN_OR_RETURN(const Response response, Execute(request));
  if (!IsSuccess(response.status)) return StatusOf(response, request.what);
  auto it = response.headers.find("etag");
  if (it == response.headers.end()) {
    return absl::UnavailableError(absl::StrCat(request.what, ": no ETag in the answer"));
  }
  return it->second;
}

absl::Status S3Client::CompleteMultipartUpload(const std::string& key, const std::string& upload_id,
                                               const std::vector<S3Part>& parts,
                                               bool if_none_match) {
  std::string xml = "<CompleteMultipartUpload>";
  for (const S3Part& part : parts) {
    absl::StrAppend(&xml, "<Part><PartNumber>", part.number, "</PartNumber><ETag>",
                    XmlEscape(part.etag), "</ETag></Part>");
  }
  xml += "</CompleteMultipartUpload>";
  Request request;
  request.method = "POST";
  request.key = key;
  request.query = {{"uploadId", upload_id}};
  request.body = xml;
  request.headers = {{"content-type", "application/xml"}};
  if (if_none_match) request.headers.emplace_back("if-none-match", "*");
  request.what = absl::StrCat("CompleteMultipartUpload ", key);
  request.op = "complete_multipart";
  CTXMEM_ASSIGN_OR_RETURN(Response response, Execute(request));
  if (if_none_match && (response.status == 412 || response.status == 409)) {
    return absl::AlreadyExistsError(absl::StrCat(key, " exists"));
  }
  if (!IsSuccess(response.status)) return StatusOf(response, request.what);
  if (absl::StrContains(response.body, "<Error>")) {  // S3 may fail a Complete with a 200
    response.status = 500;
    return StatusOf(response, request.what);
  }
  return absl::OkStatus();
}

absl::Status S3Client::AbortMultipartUpload(const std::string& key, const std::string& upload_id) {
  Request request;
  request.method = "DELETE";
  request.key = key;
  request.query = {{"uploadId", upload_id}};
  request.what = absl::StrCat("AbortMultipartUpload ", key);
  request.op = "abort_multipart";
  CTXMEM_ASSIGN_OR_RETURN(const Response response, Execute(request));
  if (IsSuccess(response.status) || response.status == 404) return absl::OkStatus();
  return StatusOf(response, request.what);
}

absl::StatusOr<S3Object> S3Client::HeadObject(const std::string& key) const {
  Request request;
  request.method = "HEAD";
  request.key = key;
  request.what = absl::StrCat("HEAD ", key);
  request.op = "head";
  CTXMEM_ASSIGN_OR_RETURN(const Response response, Execute(request));
  if (!IsSuccess(response.status)) return StatusOf(response, request.what);
  return ObjectFromHeaders(key, response);
}

absl::StatusOr<S3Object> S3Client::GetObject(const std::string& key, uint64_t offset,
                                             uint64_t length, std::string* out) const {
  const size_t start_size = out->size();
  uint64_t received = 0;
  int n_attempts = 0;
  std::string etag;  // of the first answer; resumed pieces must come from the same object
  Request request;
  request.key = key;
  request.what = absl::StrCat("GET ", key);
  request.op = "get";
  request.sink = [&](absl::string_view bytes, const Response& answer) {
    if (etag.empty()) {
      auto it = answer.headers.find("etag");
      if (it != answer.headers.end()) etag = it->second;
    }
    out->append(bytes.data(), bytes.size());
    received += bytes.size();
  };
  request.before_attempt = [&](Request& r) {
    r.headers.clear();
    if (n_attempts++ > 0 && received > 0) {
      {
        absl::MutexLock lock(&mu_);
        ++stats_.n_resumes;
      }
      if (options_.observer != nullptr) options_.observer->OnResume(r.op);
    }
    const uint64_t from = offset + received;
    if (from > 0 || length > 0) {
      r.headers.emplace_back("range", length > 0
                                          ? absl::StrCat("bytes=", from, "-", offset + length - 1)
                                          : absl::StrCat("bytes=", from, "-"));
    }
    if (!etag.empty()) r.headers.emplace_back("if-match", etag);
  };
  // A broken body comes back as Unavailable from Attempt and is retried from `received`;
  // the ETag is pinned by the first answer that brought bytes.
  absl::StatusOr<Response> response = Execute(request);
  if (!response.ok()) {
    out->resize(start_size);
    return response.status();
  }
  if (!IsSuccess(response->status)) {
    out->resize(start_size);
    if (response->status == 412 && !etag.empty()) {
      return absl::UnavailableError(absl::StrCat(request.what, ": replaced during the download"));
    }
    return StatusOf(*response, request.what);
  }
  S3Object object = ObjectFromHeaders(key, *response);
  // S3 clips a range that runs past the end: bytes [offset, min(offset + length, size)).
  const uint64_t rest = object.size > offset ? object.size - offset : 0;
  const uint64_t want = length > 0 ? std::min(length, rest) : rest;
  if (received != want) {
    out->resize(start_size);
    return absl::DataLossError(absl::StrCat(request.what, ": got ", received, " bytes of ", want,
                                            " from offset ", offset));
  }
  return object;
}

absl::StatusOr<S3ListPage> S3Client::ListObjectsV2(const std::string& prefix,
                                                   const std::string& start_after,
                                                   const std::string& continuation_token,
                                                   int max_keys) const {
  Request request;
  request.key = "";
  request.query = {{"list-type", "2"},
                   {"max-keys", absl::StrCat(std::clamp(max_keys, 1, 1000))},
                   {"prefix", prefix}};
  if (!start_after.empty()) request.query.emplace_back("start-after", start_after);
  if (!continuation_token.empty()) {
    request.query.emplace_back("continuation-token", continuation_token);
  }
  request.what = absl::StrCat("ListObjectsV2 ", prefix);
  request.op = "list";
  CTXMEM_ASSIGN_OR_RETURN(const Response response, Execute(request));
  if (!IsSuccess(response.status)) return StatusOf(response, request.what);
  S3ListPage page;
  for (absl::string_view contents : XmlElements(response.body, "Contents")) {
    S3Object object;
    object.key = XmlText(contents, "Key").value_or("");
    uint64_t size = 0;
    if (absl::SimpleAtoi(XmlText(contents, "Size").value_or("0"), &size)) object.size = size;
    object.etag = XmlText(contents, "ETag").value_or("");
    object.last_modified_unix_ms = ParseTime(XmlText(contents, "LastModified").value_or(""));
    if (!object.key.empty()) page.objects.push_back(std::move(object));
  }
  page.truncated = XmlText(response.body, "IsTruncated").value_or("false") == "true";
  page.next_continuation_token = XmlText(response.body, "NextContinuationToken").value_or("");
  return page;
}

absl::Status S3Client::DeleteObject(const std::string& key) {
  Request request;
  request.method = "DELETE";
  request.key = key;
  request.what = absl::StrCat("DELETE ", key);
  request.op = "delete";
  CTXMEM_ASSIGN_OR_RETURN(const Response response, Execute(request));
  if (IsSuccess(response.status) || response.status == 404) return absl::OkStatus();
  return StatusOf(response, request.what);
}

}  // namespace ctxmem::blob
