#pragma once
// Mapping between absl::Status (everything in common/) and grpc::Status (the wire), STYLE.md
// rule 24: handlers call Status-returning code and map the result here, nothing else.
// Thread-safety: free functions.

#include <absl/status/status.h>
#include <grpcpp/support/status.h>

namespace ctxmem::service {

// Same code (the two enums share their numbering), same message. Messages longer than 4 KiB
// are cut (with "...") so an error never makes a trailer the client refuses.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The inverse, for clients of our own services (fetcher, CLI).
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace ctxmem::service
