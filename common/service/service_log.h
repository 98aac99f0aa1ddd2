#pragma once
// ServiceLog: the servers' structured log lines (spdlog, to stderr) behind a header that does
// not include spdlog. LibTorch ships its own {fmt} v12 headers ahead of Debian's fmt 9 on the
// include path of every target that links the model, and spdlog (built against fmt 9) does not
// compile against them; service_log.cc is the one TU that includes spdlog, with Debian's fmt
// pinned first. Callers format with absl (StrCat/StrFormat) and pass finished lines.
// Log lines name the request id ("rid=...") and never carry prompt or context text unless the
// operator asked for it (--log-content).
// Thread-safety: thread-safe (spdlog's default logger is).

#include <string_view>

#include "absl/status/status.h"

namespace ctxmem::service {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kCritical };

// Makes a stderr logger named `name` the default, at `level` ("trace", "debug", "info", "warn",
// "error", "critical", "off"). InvalidArgument listing the names for another level.
absl::Status InitServiceLog(std::string_view name, std::string_view level);

void Log(LogLevel level, std::string_view line);
inline void LogInfo(std::string_view line) { Log(LogLevel::kInfo, line); }
inline void LogWarn(std::string_view line) { Log(LogLevel::kWarn, line); }
inline void LogError(std::string_view line) { Log(LogLevel::kError, line); }
inline void LogDebug(std::string_view line) { Log(LogLevel::kDebug, line); }

}  // namespace ctxmem::service
