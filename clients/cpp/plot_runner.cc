#include "clients/cpp/plot_runner.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

extern char** environ;

namespace ctxmem::cli {
namespace fs = std::filesystem;

absl::Status MakeOutputDir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create output folder ", dir, ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& content) {
  const std::string temp = absl::StrCat(path, ".tmp.", getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot create ", temp, ": ", std::strerror(errno)));
  }
  size_t written = 0;
  bool ok = true;
  while (ok && written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) written += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int saved_errno = errno;
  ok = (::close(fd) == 0) && ok;
  if (!ok || std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(ok ? errno : saved_errno);
    std::remove(temp.c_str());
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", why));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FindToolScript(const std::string& name) {
  std::vector<std::string> tried;
  std::error_code ec;
  const fs::path rel = fs::path("tools") / name;
  const fs::path cwd = fs::current_path(ec);
  if (!ec) {
    const fs::path candidate = cwd / rel;
    if (fs::exists(candidate)) return candidate.string();
    tried.push_back(candidate.string());
  }
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (fs::path dir = exe.parent_path(); !dir.empty(); dir = dir.parent_path()) {
      const fs::path candidate = dir / rel;
      if (fs::exists(candidate)) return candidate.string();
      tried.push_back(candidate.string());
      if (dir == dir.root_path()) break;
    }
  }
  return absl::NotFoundError(
      absl::StrCat("cannot find tools/", name, "; tried ", absl::StrJoin(tried, ", ")));
}

absl::Status RunPython(const std::string& python, const std::string& script,
                       const std::vector<std::string>& args) {
  std::vector<std::string> argv_strings = {python, script};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, python.c_str(), nullptr, nullptr, argv.data(), environ);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("cannot start ", python, ": ", std::strerror(rc)));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return absl::InternalError(absl::StrCat("waiting for ", python, ": ", std::strerror(errno)));
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(
        python, " ", script, " failed (",
        WIFEXITED(status) ? absl::StrCat("exit ", WEXITSTATUS(status))
                          : absl::StrCat("signal ", WIFSIGNALED(status) ? WTERMSIG(status) : 0),
        ")"));
  }
  return absl::OkStatus();
}

void DrawPlotOrWarn(const std::string& command, const std::string& python,
                    const std::string& script, const std::vector<std::string>& args,
                    const std::string& results) {
  absl::StatusOr<std::string> path = FindToolScript(script);
  absl::Status plotted = path.ok() ? RunPython(python, *path, args) : path.status();
  if (plotted.ok()) return;
  std::fprintf(stderr,
               "ctxmem %s: warning: plot not drawn (%s); %s complete. Draw it later with: "
               "<python with matplotlib> tools/%s %s\n",
               command.c_str(), std::string(plotted.message()).c_str(), results.c_str(),
               script.c_str(), absl::StrJoin(args, " ").c_str());
}

}  // namespace ctxmem::cli
