#pragma once
// AtomicFile: a file that appears at its final path complete and durable, or not at all
// (STYLE rule 27). Bytes go to a temp file in the same directory; Commit() fsyncs it, renames
// it over the final path and fsyncs the directory. A temp file that was not committed is
// removed, except after a crash, which leaves a `.tmp.` file for the owner of the directory
// to sweep (FileBlobStore does so when it opens).
// Thread-safety: not thread-safe (one writer per object); different objects are independent.

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ctxmem::blob {

// Temp files are named "<dir>/.tmp.<final basename>.<pid>.<sequence>".
inline constexpr absl::string_view kAtomicTempPrefix = ".tmp.";
// True for a file name (no directory) that AtomicFile uses for its temp files.
bool IsAtomicTempName(absl::string_view file_name);

// Faults to inject into one AtomicFile (crash-safety tests only; STYLE rule 10).
struct AtomicFileFault {
  int64_t fail_after_bytes = -1;  // Append fails once this many bytes are written; -1 = never
  // The errno that failure reports, as a real write(2) would (e.g. ENOSPC: the disk filled up
  // mid-write); 0 = an Internal "injected write fault".
  int write_errno = 0;
  int sync_errno = 0;               // != 0: Commit's fsync fails with this errno (ENOSPC, EIO)
  bool fail_before_rename = false;  // Commit fails after the fsync, before the rename
  // Simulates kill -9: a failed Append/Commit and the destructor leave the temp file behind.
  bool abandon_temp = false;
};

class AtomicFile {
 public:
  // Creates the temp file beside `path` (whose directory must exist). NotFound when the
  // directory is missing, ResourceExhausted when the filesystem is full (ENOSPC, EDQUOT: also
  // for Append and Commit), Internal for other OS errors; messages name the path and errno.
  static absl::StatusOr<std::unique_ptr<AtomicFile>> Create(const std::string& path);

  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  // Removes the temp file unless Commit() succeeded (or a test fault abandons it).
  ~AtomicFile();

  // Appends bytes to the temp file. On failure (Internal with errno text) the file is
  // unusable: later calls fail and nothing reaches `path`.
  absl::Status Append(absl::string_view bytes);
  // fsync, close, rename over `path` (replacing any file there), fsync the directory. On
  // failure `path` is unchanged and the temp file is removed. FailedPrecondition if called
  // twice or after a failed Append.
  absl::Status Commit();

  const std::string& path() const { return path_; }            // final path
  const std::string& temp_path() const { return temp_path_; }  // where bytes go until Commit
  uint64_t bytes_written() const { return bytes_written_; }

  void ForTesting_SetFault(const AtomicFileFault& fault) { fault_ = fault; }

 private:
  AtomicFile(std::string path, std::string temp_path, int fd)
      : path_(std::move(path)), temp_path_(std::move(temp_path)), fd_(fd) {}
  // Closes the descriptor and, unless a fault abandons it, removes the temp file.
  void Discard();

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;  // -1 once closed
  bool failed_ = false;
  bool committed_ = false;
  uint64_t bytes_written_ = 0;
  AtomicFileFault fault_;
};

// Writes `bytes` to `path` through an AtomicFile.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes);

// Makes `from` durable and renames it to `to` (same filesystem), then fsyncs the directory of
// `to`. Internal (with errno text, e.g. EXDEV across filesystems) on failure; `from` is left
// in place then.
absl::Status RenameFileDurably(const std::string& from, const std::string& to);

// fsyncs a directory so that renames and unlinks inside it survive a crash.
absl::Status SyncDirectory(const std::string& dir);

// Directory part of `path` ("." when it has none).
std::string DirName(const std::string& path);

}  // namespace ctxmem::blob
