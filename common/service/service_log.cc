#include "common/service/service_log.h"

// Debian's fmt first, by absolute path: torch's bundled fmt (earlier on the include path) uses
// the same include guards, so spdlog's <fmt/...> includes then resolve to what is already read.
// FMT_BASE_H_ blocks torch's fmt/base.h, which Debian's fmt 9 does not have.
// clang-format off
#include "/usr/include/fmt/core.h"
#include "/usr/include/fmt/format.h"
#include "/usr/include/fmt/ostream.h"
#include "/usr/include/fmt/chrono.h"
#define FMT_BASE_H_
// clang-format on
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace ctxmem::service {

absl::Status InitServiceLog(std::string_view name, std::string_view level) {
  static constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                                 "error", "critical", "off"};
  bool known = false;
  for (std::string_view l : kLevels) known |= l == level;
  if (!known) {
    return absl::InvalidArgumentError(
        absl::StrCat("log level '", std::string(level),
                     "' is not one of trace, debug, info, warn, error, critical, off"));
  }
  auto logger = spdlog::get(std::string(name));
  if (logger == nullptr) logger = spdlog::stderr_color_mt(std::string(name));
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
  spdlog::flush_on(spdlog::level::warn);
  return absl::OkStatus();
}

void Log(LogLevel level, std::string_view line) {
  spdlog::level::level_enum l = spdlog::level::info;
  switch (level) {
    case LogLevel::kTrace:
      l = spdlog::level::trace;
      break;
    case LogLevel::kDebug:
      l = spdlog::level::debug;
      break;
    case LogLevel::kInfo:
      l = spdlog::level::info;
      break;
    case LogLevel::kWarn:
      l = spdlog::level::warn;
      break;
    case LogLevel::kError:
      l = spdlog::level::err;
      break;
    case LogLevel::kCritical:
      l = spdlog::level::critical;
      break;
  }
  spdlog::log(l, "{}", line);
}

}  // namespace ctxmem::service
