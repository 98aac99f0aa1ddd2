#pragma once
// A whole file mapped read-only into memory (RAII: unmapped on destruction).
// Thread-safety: const methods only; the mapping is immutable after Open().

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace ctxmem::weights {

class MappedFile {
 public:
  // Maps `path` read-only. NotFound when the file does not exist, InvalidArgument when it is
  // not a regular file, Internal on other OS errors; every message names the path. An empty
  // file maps to data() == nullptr and size() == 0.
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path);

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  // Start of the mapping; valid while this object lives. nullptr for an empty file.
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }  // bytes

 private:
  MappedFile(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}

  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;  // bytes
};

}  // namespace ctxmem::weights
