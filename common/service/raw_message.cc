#include "common/service/raw_message.h"

#include <grpcpp/impl/codegen/proto_utils.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/service/grpc_status.h"

namespace ctxmem::service {

absl::Status ParseRawMessage(absl::string_view bytes, google::protobuf::Message* out) {
  out->Clear();
  if (bytes.size() > static_cast<size_t>(INT32_MAX) ||
      !out->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    const std::string type = out->GetDescriptor()->full_name();
    out->Clear();
    return absl::InvalidArgumentError(absl::StrCat(
        "malformed ", type, ": ", bytes.size(),
        " bytes that are not a valid encoding of it (bad wire format, or a string field that is "
        "not valid UTF-8)"));
  }
  return absl::OkStatus();
}

absl::Status ParseRawMessage(const grpc::ByteBuffer& buffer, google::protobuf::Message* out) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed ", out->GetDescriptor()->full_name(), ": unreadable payload"));
  }
  if (slices.size() == 1) {
    return ParseRawMessage(
        absl::string_view(reinterpret_cast<const char*>(slices[0].begin()), slices[0].size()), out);
  }
  std::string bytes;
  bytes.reserve(buffer.Length());
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return ParseRawMessage(bytes, out);
}

absl::Status SerializeRawMessage(const google::protobuf::Message& message, grpc::ByteBuffer* out) {
  out->Clear();  // the writer needs an empty buffer (a reused one holds the previous message)
  bool own_buffer = false;
  const grpc::Status s =
      grpc::SerializationTraits<google::protobuf::Message>::Serialize(message, out, &own_buffer);
  if (!s.ok()) {
    return absl::InternalError(absl::StrCat(
        "cannot serialize ", message.GetDescriptor()->full_name(), ": ", s.error_message()));
  }
  return absl::OkStatus();
}

grpc::Status FinishRawUnary(grpc::ServerUnaryReactor* reactor, const absl::Status& status,
                            const google::protobuf::Message& response,
                            grpc::ByteBuffer* raw_response) {
  absl::Status final_status = status;
  if (final_status.ok()) final_status = SerializeRawMessage(response, raw_response);
  const grpc::Status out = ToGrpcStatus(final_status);
  reactor->Finish(out);
  return out;
}

}  // namespace ctxmem::service
