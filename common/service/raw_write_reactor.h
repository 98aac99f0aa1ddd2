#pragma once
// RawWriteReactor<Message>: the server-streaming reactor of a method registered raw (see
// raw_message.h), with the typed writes of grpc::ServerWriteReactor<Message>: each StartWrite
// serializes the message into the one buffer in flight (gRPC allows one write at a time).
// A reactor written for ServerWriteReactor<Message> only changes its base class.
// Thread-safety: as grpc::ServerWriteReactor (one write in flight).

#include <grpcpp/grpcpp.h>

#include "common/service/grpc_status.h"
#include "common/service/raw_message.h"

namespace ctxmem::service {

template <class Message>
class RawWriteReactor : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 protected:
  using Base = grpc::ServerWriteReactor<grpc::ByteBuffer>;

  // The message may be freed once the call returns. A message that cannot be serialized ends
  // the call with INTERNAL (OnWriteDone is then not called for it).
  void StartWrite(const Message* message, grpc::WriteOptions options = grpc::WriteOptions()) {
    if (Serialize(*message)) Base::StartWrite(&buffer_, options);
  }
  void StartWriteLast(const Message* message, grpc::WriteOptions options) {
    if (Serialize(*message)) Base::StartWriteLast(&buffer_, options);
  }
  void StartWriteAndFinish(const Message* message, grpc::WriteOptions options,
                           grpc::Status status) {
    if (Serialize(*message)) Base::StartWriteAndFinish(&buffer_, options, std::move(status));
  }

 private:
  bool Serialize(const Message& message) {
    absl::Status s = SerializeRawMessage(message, &buffer_);
    if (!s.ok()) Finish(ToGrpcStatus(s));
    return s.ok();
  }

  grpc::ByteBuffer buffer_;  // the serialized message being written
};

}  // namespace ctxmem::service
