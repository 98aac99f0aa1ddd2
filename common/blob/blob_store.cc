#include "common/blob/blob_store.h"

namespace ctxmem::blob {

absl::string_view BlobHandle::bytes() const {
  return opened_ == nullptr ? absl::string_view() : opened_->bytes();
}

const BlobInfo& BlobHandle::info() const {
  static const BlobInfo kEmpty;
  return opened_ == nullptr ? kEmpty : opened_->info();
}

}  // namespace ctxmem::blob
