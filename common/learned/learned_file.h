#pragma once
// LearnedFile: the container of the fusers' trained weights (spec §7): named fp32 tensors plus
// string metadata in one safetensors file ("ctxmem.method" says which method it holds). The
// fusers' weight classes parse and check its tensors; this only reads and writes them.
// Thread-safety: plain value type.

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ctxmem::learned {

struct LearnedFile {
  std::map<std::string, at::Tensor> tensors;    // fp32, CPU, contiguous
  std::map<std::string, std::string> metadata;  // __metadata__

  // Reads `path`: every tensor must be F32, F16, BF16 or F64 (read as fp32). NotFound for a
  // missing file; InvalidArgument naming the file and tensor otherwise.
  static absl::StatusOr<LearnedFile> Load(const std::string& path);
  // Writes the tensors (as F32, names sorted) and metadata atomically.
  absl::Status Save(const std::string& path) const;

  // The tensor `name` with exactly `shape`, finite; InvalidArgument naming `source`, the tensor
  // and both shapes otherwise.
  absl::StatusOr<at::Tensor> Get(const std::string& source, const std::string& name,
                                 const std::vector<int64_t>& shape) const;
  // Metadata `key` as a number; `fallback` when absent; InvalidArgument when not a number.
  absl::StatusOr<double> Number(const std::string& source, const std::string& key,
                                double fallback) const;

  // Helpers for every learned method's file format (perceiver, rcc bridge, fusers):
  // "[a, b]" for a tensor's shape, "missing" for an undefined one (error messages).
  static std::string ShapeString(const at::Tensor& t);
  // "<prefix><l>.<part>" -> (l, part), e.g. "layers.3.wq.weight" with prefix "layers." ->
  // (3, "wq.weight"); false for any other name (no digits, a sign, nothing after the dot).
  static bool SplitLayerName(std::string_view name, std::string_view prefix, int64_t* layer,
                             std::string* part);
};

}  // namespace ctxmem::learned
