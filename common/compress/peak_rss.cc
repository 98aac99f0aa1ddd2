#include "common/compress/peak_rss.h"

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace ctxmem::compress {
namespace {

// Value of a "Key:   1234 kB" line of /proc/self/status, in bytes.
absl::StatusOr<int64_t> StatusField(const std::string& key) {
  std::ifstream in("/proc/self/status");
  if (!in) return absl::NotFoundError("cannot read /proc/self/status (not Linux?)");
  std::string line;
  const std::string prefix = key + ":";
  while (std::getline(in, line)) {
    if (line.compare(0, prefix.size(), prefix) != 0) continue;
    std::istringstream fields(line.substr(prefix.size()));
    int64_t value = -1;
    std::string unit;
    fields >> value >> unit;
    if (!fields || value < 0 || unit != "kB") {
      return absl::InternalError(absl::StrCat("unparsable /proc/self/status line: '", line, "'"));
    }
    return value * 1024;
  }
  return absl::InternalError(absl::StrCat("/proc/self/status has no ", key, " line"));
}

}  // namespace

absl::StatusOr<int64_t> PeakRssBytes() { return StatusField("VmHWM"); }

absl::StatusOr<int64_t> CurrentRssBytes() { return StatusField("VmRSS"); }

absl::Status ResetPeakRss() {
  std::ofstream out("/proc/self/clear_refs");
  if (!out) return absl::FailedPreconditionError("cannot open /proc/self/clear_refs");
  out << "5";
  out.flush();
  if (!out) return absl::FailedPreconditionError("writing 5 to /proc/self/clear_refs failed");
  return absl::OkStatus();
}

}  // namespace ctxmem::compress
