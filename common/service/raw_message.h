#pragma once
// Requests and responses of gRPC methods registered raw (grpc::ByteBuffer in and out). A method
// registered with the generated typed callback API answers a request that does not parse with
// UNIMPLEMENTED and an empty message: gRPC fails the call itself when deserialization fails,
// before any handler runs (CallbackUnaryHandler::RunHandler in grpcpp). Our services register
// every method raw and parse here, so such a request is INVALID_ARGUMENT naming the message type.
// Thread-safety: free functions.

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace ctxmem::service {

// Parses the whole of `bytes` into `*out` (cleared first). InvalidArgument "malformed
// <type>: ..." naming the full message type (e.g. ctxmem.v1.StatMemoryRequest) when the bytes
// are not a valid wire encoding of it (bad tags, truncated fields, invalid UTF-8 in a string).
absl::Status ParseRawMessage(absl::string_view bytes, google::protobuf::Message* out);
// The same for a request as gRPC received it.
absl::Status ParseRawMessage(const grpc::ByteBuffer& buffer, google::protobuf::Message* out);

template <class Message>
absl::StatusOr<Message> ParseRawRequest(const grpc::ByteBuffer& buffer) {
  Message message;
  absl::Status status = ParseRawMessage(buffer, &message);
  if (!status.ok()) return status;
  return message;
}

// Serializes `message` into `*out` (replacing what it held). Internal if it cannot be (e.g.
// over 2 GiB).
absl::Status SerializeRawMessage(const google::protobuf::Message& message, grpc::ByteBuffer* out);

// Ends a raw unary call: `status` as a gRPC status (ToGrpcStatus) and, when it is OK,
// `response` serialized into `*raw_response`. Finishes `reactor` and returns the status sent.
grpc::Status FinishRawUnary(grpc::ServerUnaryReactor* reactor, const absl::Status& status,
                            const google::protobuf::Message& response,
                            grpc::ByteBuffer* raw_response);

}  // namespace ctxmem::service
