#pragma once
// What the evaluation subcommands do with their results: write them atomically into the output
// folder, then hand the JSON to a plotting script of tools/ run by the project's Python.
// Thread-safety: plain functions; call from the main thread.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ctxmem::cli {

// Creates `dir` (and parents) if needed. InvalidArgument naming it when that fails.
absl::Status MakeOutputDir(const std::string& dir);

// Writes `content` to `path` through a temp file in the same folder, fsync and rename, so a
// reader never sees half a file; the temp is removed on any error. Internal naming the path.
absl::Status WriteFileAtomically(const std::string& path, const std::string& content);

// Finds tools/<name> of the source tree: under the current directory first, then in the parent
// folders of the running executable (a build folder inside the checkout). NotFound listing the
// places tried.
absl::StatusOr<std::string> FindToolScript(const std::string& name);

// Runs `python script args...` and waits. Internal with the exit status when it cannot start
// or does not exit 0 (its own stderr has the details).
absl::Status RunPython(const std::string& python, const std::string& script,
                       const std::vector<std::string>& args);

// Draws a command's plot: runs tools/<script> with `args` through `python`. The results are
// already written, so a failure (no script, no matplotlib) does not fail the command: it prints
// one warning saying `results` are complete and the command line that draws the plot later.
void DrawPlotOrWarn(const std::string& command, const std::string& python,
                    const std::string& script, const std::vector<std::string>& args,
                    const std::string& results);

}  // namespace ctxmem::cli
