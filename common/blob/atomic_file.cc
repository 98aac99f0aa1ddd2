#include "common/blob/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace ctxmem::blob {
namespace {

std::atomic<uint64_t> g_temp_sequence{0};

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

absl::Status ErrnoError(absl::string_view what, const std::string& path, int err) {
  std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(message);
  // A full disk or quota is a resource the operator can free, not a bug: the caller's request
  // fails with RESOURCE_EXHAUSTED and the next one may succeed.
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

absl::Status SyncFd(int fd, const std::string& path) {
  while (fsync(fd) != 0) {
    if (errno != EINTR) return ErrnoError("cannot fsync", path, errno);
  }
  return absl::OkStatus();
}

}  // namespace

bool IsAtomicTempName(absl::string_view file_name) {
  return absl::StartsWith(file_name, kAtomicTempPrefix);
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::StatusOr<std::unique_ptr<AtomicFile>> AtomicFile::Create(const std::string& path) {
  const std::string base = BaseName(path);
  if (base.empty() || base == "." || base == "..") {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' does not name a file"));
  }
  const std::string dir = DirName(path);
  std::string temp_path =
      absl::StrCat(dir, "/", kAtomicTempPrefix, base, ".", static_cast<int64_t>(getpid()), ".",
                   g_temp_sequence.fetch_add(1, std::memory_order_relaxed));
  const int fd = open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create temp file", temp_path, errno);
  return std::unique_ptr<AtomicFile>(new AtomicFile(path, std::move(temp_path), fd));
}

AtomicFile::~AtomicFile() {
  if (!committed_) Discard();
}

void AtomicFile::Discard() {
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  if (!fault_.abandon_temp) unlink(temp_path_.c_str());
}

absl::Status AtomicFile::Append(absl::string_view bytes) {
  if (committed_ || failed_ || fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("AtomicFile ", path_, ": Append after Commit or a failure"));
  }
  size_t n_allowed = bytes.size();
  bool inject = false;
  if (fault_.fail_after_bytes >= 0) {
    const uint64_t limit = static_cast<uint64_t>(fault_.fail_after_bytes);
    const uint64_t room = limit > bytes_written_ ? limit - bytes_written_ : 0;
    if (room < n_allowed) {
      n_allowed = static_cast<size_t>(room);
      inject = true;
    }
  }
  const char* p = bytes.data();
  size_t left = n_allowed;
  while (left > 0) {
    const ssize_t n = write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      failed_ = true;
      Discard();
      return ErrnoError("cannot write", temp_path_, err);
    }
    p += n;
    left -= static_cast<size_t>(n);
    bytes_written_ += static_cast<uint64_t>(n);
  }
  if (inject) {
    failed_ = true;
    Discard();
    if (fault_.write_errno != 0) return ErrnoError("cannot write", temp_path_, fault_.write_errno);
    return absl::InternalError(
        absl::StrCat("injected write fault after ", bytes_written_, " bytes of ", temp_path_));
  }
  return absl::OkStatus();
}

absl::Status AtomicFile::Commit() {
  if (committed_ || failed_ || fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("AtomicFile ", path_, ": Commit twice or after a failure"));
  }
  failed_ = true;  // until the rename succeeds, every exit below is a failure
  absl::Status status = fault_.sync_errno != 0
                            ? ErrnoError("cannot fsync", temp_path_, fault_.sync_errno)
                            : SyncFd(fd_, temp_path_);
  if (!status.ok()) {
    Discard();
    return status;
  }
  const int fd = fd_;
  fd_ = -1;
  if (close(fd) != 0) {
    const int err = errno;
    Discard();
    return ErrnoError("cannot close", temp_path_, err);
  }
  if (fault_.fail_before_rename) {
    Discard();
    return absl::InternalError(absl::StrCat("injected fault before renaming ", temp_path_));
  }
  if (rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    Discard();
    return ErrnoError(absl::StrCat("cannot rename ", temp_path_, " to"), path_, err);
  }
  committed_ = true;
  failed_ = false;
  // The file is in place; a failed directory sync only weakens durability across a crash.
  return SyncDirectory(DirName(path_));
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes) {
  CTXMEM_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> file, AtomicFile::Create(path));
  CTXMEM_RETURN_IF_ERROR(file->Append(bytes));
  return file->Commit();
}

absl::Status RenameFileDurably(const std::string& from, const std::string& to) {
  const int fd = open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", from, errno);
  absl::Status status = SyncFd(fd, from);
  close(fd);
  CTXMEM_RETURN_IF_ERROR(status);
  if (rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoError(absl::StrCat("cannot rename ", from, " to"), to, errno);
  }
  return SyncDirectory(DirName(to));
}

absl::Status SyncDirectory(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open directory", dir, errno);
  absl::Status status = SyncFd(fd, dir);
  close(fd);
  return status;
}

}  // namespace ctxmem::blob
