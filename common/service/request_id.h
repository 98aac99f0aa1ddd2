#pragma once
// Request ids: short unique names for one RPC, returned to the client (CompressAccepted) and
// put on every log line and event about that request, so a user's report can be matched to
// the server's logs.
// Thread-safety: thread-safe.

#include <string>

namespace ctxmem::service {

// 16 lowercase hex characters. Unique within the process (a bijective mix of a counter and a
// per-process random key), and practically unique across processes and restarts.
std::string NewRequestId();

}  // namespace ctxmem::service
