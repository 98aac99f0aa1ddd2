#pragma once
// Trained weights registered by name: `--learned NAME=FILE` on compressor_svc and on the CLI's
// eval tools makes NAME a method of the one PrunerRegistry (so CompressionConfig::pruner =
// NAME selects it, through the gRPC config as well), backed by the weights of FILE loaded once
// and shared by every compression. What kind of method a file holds is read from its
// "ctxmem.method" metadata (written by `ctxmem train`; absent = "perceiver"). An "rcc" file is a
// bridge: NAME becomes a CompressionConfig::rcc_bridge for pruner=rcc (rcc_bridge_registry.h).
// The memory id of a compression names the weights by content ("sha256:<hex>" of the file),
// never by path: a moved file keeps its ids, a retrained file at the same path does not.
// Thread-safety: thread-safe (registration takes the registry's lock).

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ctxmem::learned {

// "sha256:<64 hex>" of the file's bytes. NotFound for a missing file.
absl::StatusOr<std::string> WeightsContentId(const std::string& path);

// Registers `name` (lowercase letters, digits, '_'; not a built-in method) for the weights in
// `path`. InvalidArgument for a bad name, a file that is not a valid learned file, or a method
// this build cannot run; AlreadyExists when `name` is taken by other weights (registering the
// same name with the same content again is OK).
absl::Status RegisterLearned(const std::string& name, const std::string& path);
// "NAME=FILE" as the --learned flag takes it.
absl::Status RegisterLearnedSpec(std::string_view spec);

}  // namespace ctxmem::learned
