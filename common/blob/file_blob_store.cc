#include "common/blob/file_blob_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/weights/mapped_file.h"
#include "nlohmann/json.hpp"

// Invariants (mu_ held):
//
// * entries_ holds exactly the blobs whose final file <blobs>/<id>.safetensors exists and was
//   written by this store or found by Scan(); every such file is a complete sealed blob,
//   because it only ever appears there by an atomic rename. total_bytes_ is the sum of their
//   n_bytes, and lru_ maps each entry's lru_tick back to its id (one-to-one).
// * A blob's owners file is written (atomically) before the blob itself and removed after it,
//   so after a crash an owners file may lack its blob (Scan removes it) but a blob written by
//   this store never lacks its owners. A blob found without a readable owners file has no
//   owner: no tenant sees it until a Put of the same id adopts it.
// * An id in pending_ is being written by exactly one Put; no entry exists for it, and every
//   other Put/Delete of that id waits on pending_done_ until it leaves pending_.
//   total_bytes_ + reserved_bytes_ <= max_bytes (when there is a budget): a Put reserves its
//   bytes, evicting first, before it writes.
// * An entry with n_pins > 0 is never evicted. Pins are counted per entry instance
//   (generation), so a handle that outlives its entry (deleted, evicted, quarantined) unpins
//   nothing; its mapping stays readable because unlinking does not unmap.
// * Get() serves bytes only after VerifyBlob() passed on that very mapping; a blob that fails
//   with DataLoss leaves entries_ for quarantine/ in the same critical section.

namespace ctxmem::blob {

struct FileBlobStore::Opened final : OpenedBlob {
  absl::string_view bytes() const override {
    return {reinterpret_cast<const char*>(file->data()), static_cast<size_t>(file->size())};
  }
  const BlobInfo& info() const override { return blob_info; }

  std::unique_ptr<weights::MappedFile> file;  // the verified bytes
  BlobInfo blob_info;
};

struct FileBlobStore::Pin final : BlobPin {
  Pin(FileBlobStore* store, std::string id, uint64_t generation)
      : store(store), id(std::move(id)), generation(generation) {}
  ~Pin() override { store->Unpin(id, generation); }

  FileBlobStore* store;  // borrowed; outlives the handle
  std::string id;
  uint64_t generation;  // the entry instance this pin belongs to
};

namespace {

namespace fs = std::filesystem;

constexpr absl::string_view kBlobSuffix = ".safetensors";
constexpr absl::string_view kOwnersSuffix = ".owners.json";
constexpr size_t kMaxIdChars = 128;
constexpr size_t kMaxTenantBytes = 256;
constexpr uint64_t kMaxOwnersFileBytes = 1 << 20;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::Status CheckTenant(const std::string& tenant) {
  if (tenant.size() > kMaxTenantBytes || !IsValidUtf8(tenant)) {
    return absl::InvalidArgumentError(absl::StrCat("tenant of ", tenant.size(),
                                                   " bytes is not valid UTF-8 of at most ",
                                                   kMaxTenantBytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status CheckId(const std::string& id) {
  if (!FileBlobStore::IsValidId(id)) {
    return absl::InvalidArgumentError(absl::StrCat("malformed blob id '", id.substr(0, 200),
                                                   "' (want 1..", kMaxIdChars,
                                                   " characters of [0-9A-Za-z_-])"));
  }
  return absl::OkStatus();
}

absl::Status NotFound(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("no blob '", id, "'"));
}

absl::Status MakeDir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

// Owners recorded in an owners file; an empty set if it is missing or unreadable.
std::set<std::string> ReadOwners(const std::string& path) {
  std::set<std::string> owners;
  absl::StatusOr<std::unique_ptr<weights::MappedFile>> file = weights::MappedFile::Open(path);
  if (!file.ok() || (*file)->size() > kMaxOwnersFileBytes || (*file)->size() == 0) return owners;
  const char* text = reinterpret_cast<const char*>((*file)->data());
  const nlohmann::json json =
      nlohmann::json::parse(text, text + (*file)->size(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object() || !json.contains("owners") ||
      !json["owners"].is_array()) {
    return owners;
  }
  for (const nlohmann::json& owner : json["owners"]) {
    if (owner.is_string()) owners.insert(owner.get<std::string>());
  }
  return owners;
}

int64_t MtimeUnixMs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

absl::string_view Bytes(const weights::MappedFile& file) {
  return {reinterpret_cast<const char*>(file.data()), static_cast<size_t>(file.size())};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// FileBlobStore

absl::Status FileBlobStoreOptions::Validate() const {
  if (dir.empty()) return absl::InvalidArgumentError("blob store dir is empty");
  if (list_page_size_max < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("list_page_size_max=", list_page_size_max, " must be >= 1"));
  }
  return absl::OkStatus();
}

bool FileBlobStore::IsValidId(absl::string_view id) {
  if (id.empty() || id.size() > kMaxIdChars) return false;
  for (char c : id) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

FileBlobStore::FileBlobStore(FileBlobStoreOptions options)
    : options_(std::move(options)),
      blobs_dir_(absl::StrCat(options_.dir, "/blobs")),
      staging_dir_(absl::StrCat(options_.dir, "/staging")),
      quarantine_dir_(absl::StrCat(options_.dir, "/quarantine")) {}

FileBlobStore::~FileBlobStore() {
  if (lock_fd_ >= 0) close(lock_fd_);  // releases the flock
}

std::string FileBlobStore::BlobPath(const std::string& id) const {
  return absl::StrCat(blobs_dir_, "/", id, kBlobSuffix);
}

std::string FileBlobStore::OwnersPath(const std::string& id) const {
  return absl::StrCat(blobs_dir_, "/", id, kOwnersSuffix);
}

absl::StatusOr<std::unique_ptr<FileBlobStore>> FileBlobStore::Open(
    const FileBlobStoreOptions& options) {
  CTXMEM_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<FileBlobStore> store(new FileBlobStore(options));
  for (const std::string& dir :
       {options.dir, store->blobs_dir_, store->staging_dir_, store->quarantine_dir_}) {
    CTXMEM_RETURN_IF_ERROR(MakeDir(dir));
  }
  const std::string lock_path = absl::StrCat(options.dir, "/LOCK");
  store->lock_fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (store->lock_fd_ < 0) {
    return absl::InternalError(absl::StrCat("cannot open ", lock_path, ": ", std::strerror(errno)));
  }
  if (flock(store->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("blob store ", options.dir, " is in use by another FileBlobStore (", lock_path,
                     " is locked): ", std::strerror(errno)));
  }
  absl::MutexLock lock(&store->mu_);
  CTXMEM_RETURN_IF_ERROR(store->Scan());
  return store;
}

absl::Status FileBlobStore::Scan() {
  std::error_code ec;
  // Everything in staging/ is unfinished work of a previous process.
  for (fs::directory_iterator it(staging_dir_, ec), end; !ec && it != end; it.increment(ec)) {
    fs::remove_all(it->path(), ec);
  }
  if (ec)
    return absl::InternalError(absl::StrCat("cannot sweep ", staging_dir_, ": ", ec.message()));

  struct Found {
    std::string id;
    uint64_t n_bytes;
    int64_t mtime_unix_ms;
  };
  std::vector<Found> blobs;
  std::vector<std::string> owner_ids;
  for (fs::directory_iterator it(blobs_dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const std::string path = it->path().string();
    if (IsAtomicTempName(name)) {
      unlink(path.c_str());  // an interrupted write: never visible, safe to drop
      continue;
    }
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (absl::EndsWith(name, kBlobSuffix)) {
      const std::string id = name.substr(0, name.size() - kBlobSuffix.size());
      if (IsValidId(id)) {
        blobs.push_back({id, static_cast<uint64_t>(st.st_size), MtimeUnixMs(st)});
      }
    } else if (absl::EndsWith(name, kOwnersSuffix)) {
      const std::string id = name.substr(0, name.size() - kOwnersSuffix.size());
      if (IsValidId(id)) owner_ids.push_back(id);
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot scan ", blobs_dir_, ": ", ec.message()));

  // Least recently used first: the Get()s of a previous run advanced the mtimes.
  std::sort(blobs.begin(), blobs.end(), [](const Found& a, const Found& b) {
    return a.mtime_unix_ms != b.mtime_unix_ms ? a.mtime_unix_ms < b.mtime_unix_ms : a.id < b.id;
  });
  for (const Found& found : blobs) {
    Entry& entry = entries_[found.id];
    entry.n_bytes = found.n_bytes;
    entry.owners = ReadOwners(OwnersPath(found.id));
    entry.generation = next_generation_++;
    entry.mtime_unix_ms = found.mtime_unix_ms;
    entry.lru_tick = next_tick_++;
    lru_[entry.lru_tick] = found.id;
    total_bytes_ += found.n_bytes;
  }
  for (const std::string& id : owner_ids) {
    if (!entries_.contains(id)) unlink(OwnersPath(id).c_str());  // its blob never landed
  }
  CTXMEM_RETURN_IF_ERROR(SyncDirectory(blobs_dir_));
  return MakeRoom(0);
}

void FileBlobStore::Touch(const std::string& id, Entry* entry) {
  lru_.erase(entry->lru_tick);
  entry->lru_tick = next_tick_++;
  lru_[entry->lru_tick] = id;
  entry->mtime_unix_ms = NowUnixMs();
}

void FileBlobStore::RemoveEntry(const std::string& id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  lru_.erase(it->second.lru_tick);
  total_bytes_ -= it->second.n_bytes;
  entries_.erase(it);
}

absl::Status FileBlobStore::MakeRoom(uint64_t n_bytes) {
  const uint64_t max = options_.max_bytes;
  if (max == 0) return absl::OkStatus();
  if (n_bytes > max) {
    return absl::ResourceExhaustedError(
        absl::StrCat("blob of ", n_bytes, " bytes exceeds the store budget of ", max, " bytes"));
  }
  // Check first, so that a Put that cannot fit evicts nothing.
  uint64_t pinned_bytes = 0;
  for (const auto& [id, entry] : entries_) {
    if (entry.n_pins > 0) pinned_bytes += entry.n_bytes;
  }
  if (pinned_bytes + reserved_bytes_ + n_bytes > max) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "blob store budget of ", max, " bytes cannot fit ", n_bytes, " more: ", pinned_bytes,
        " bytes are pinned by readers and ", reserved_bytes_, " reserved by writes in flight"));
  }
  bool evicted = false;
  for (auto it = lru_.begin();
       it != lru_.end() && total_bytes_ + reserved_bytes_ + n_bytes > max;) {
    const std::string id = it->second;
    ++it;  // RemoveEntry erases the current position
    auto entry = entries_.find(id);
    if (entry == entries_.end() || entry->second.n_pins > 0) continue;
    unlink(BlobPath(id).c_str());
    unlink(OwnersPath(id).c_str());
    RemoveEntry(id);
    evicted = true;
  }
  if (evicted) return SyncDirectory(blobs_dir_);
  return absl::OkStatus();
}

void FileBlobStore::Quarantine(const std::string& id) {
  const std::string stem = absl::StrCat(quarantine_dir_, "/", id, ".", NowUnixMs());
  if (rename(BlobPath(id).c_str(), absl::StrCat(stem, kBlobSuffix).c_str()) != 0) {
    unlink(BlobPath(id).c_str());  // never serve it, even if it cannot be kept for inspection
  }
  if (rename(OwnersPath(id).c_str(), absl::StrCat(stem, kOwnersSuffix).c_str()) != 0) {
    unlink(OwnersPath(id).c_str());
  }
  RemoveEntry(id);
  SyncDirectory(blobs_dir_).IgnoreError();  // best effort: the entry is gone either way
  SyncDirectory(quarantine_dir_).IgnoreError();
}

absl::Status FileBlobStore::WriteOwners(const std::string& id,
                                        const std::set<std::string>& owners) const {
  nlohmann::json json = {{"owners", nlohmann::json::array()}};
  for (const std::string& owner : owners) json["owners"].push_back(owner);
  return WriteFileAtomically(OwnersPath(id),
                             json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

const FileBlobStore::Entry* FileBlobStore::FindOwned(const std::string& id,
                                                     const std::string& tenant) const {
  auto it = entries_.find(id);
  if (it == entries_.end() || !it->second.owners.contains(tenant)) return nullptr;
  return &it->second;
}

absl::StatusOr<PutResult> FileBlobStore::Put(const std::string& id, const std::string& tenant,
                                             absl::string_view sealed_bytes) {
  CTXMEM_RETURN_IF_ERROR(CheckId(id));
  CTXMEM_RETURN_IF_ERROR(CheckTenant(tenant));
  return PutVerified(id, tenant, sealed_bytes, nullptr);
}

absl::StatusOr<PutResult> FileBlobStore::PutFile(const std::string& id, const std::string& tenant,
                                                 const std::string& sealed_path) {
  CTXMEM_RETURN_IF_ERROR(CheckId(id));
  CTXMEM_RETURN_IF_ERROR(CheckTenant(tenant));
  std::error_code ec;
  if (fs::equivalent(sealed_path, BlobPath(id), ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat(sealed_path, " is the store's own file for blob '", id, "'"));
  }
  CTXMEM_ASSIGN_OR_RETURN(std::unique_ptr<weights::MappedFile> file,
                          weights::MappedFile::Open(sealed_path));
  CTXMEM_ASSIGN_OR_RETURN(PutResult result, PutVerified(id, tenant, Bytes(*file), &sealed_path));
  unlink(sealed_path.c_str());  // consumed: ENOENT when it was renamed into the store
  return result;
}

absl::StatusOr<PutResult> FileBlobStore::PutVerified(const std::string& id,
                                                     const std::string& tenant,
                                                     absl::string_view bytes,
                                                     const std::string* source_path) {
  absl::StatusOr<BlobInfo> info = VerifyBlob(bytes);
  if (!info.ok())
    return WithContext(info.status(), absl::StrCat("refusing to store blob '", id, "'"));
  if (!info->metadata.memory_id.empty() && info->metadata.memory_id != id) {
    return absl::InvalidArgumentError(absl::StrCat(
        "blob says it is memory '", info->metadata.memory_id, "' but was put as '", id, "'"));
  }
  const uint64_t n_bytes = bytes.size();
  std::optional<AtomicFileFault> fault;
  {
    absl::MutexLock lock(&mu_);
    while (pending_.contains(id)) pending_done_.Wait(&mu_);
    auto it = entries_.find(id);
    if (it != entries_.end()) {
      Entry& entry = it->second;
      if (!entry.owners.contains(tenant)) {
        std::set<std::string> owners = entry.owners;
        owners.insert(tenant);
        CTXMEM_RETURN_IF_ERROR(WriteOwners(id, owners));
        entry.owners = std::move(owners);
      }
      Touch(id, &entry);
      return PutResult{false, entry.n_bytes};
    }
    CTXMEM_RETURN_IF_ERROR(MakeRoom(n_bytes));
    reserved_bytes_ += n_bytes;
    pending_.insert(id);
    fault = std::exchange(next_fault_, std::nullopt);
  }

  // Owners first, then the blob (see the invariants). Both writes are atomic.
  absl::Status status = WriteOwners(id, {tenant});
  bool moved = false;
  if (status.ok() && source_path != nullptr && !fault.has_value()) {
    moved = RenameFileDurably(*source_path, BlobPath(id)).ok();  // else copy below
  }
  if (status.ok() && !moved) {
    absl::StatusOr<std::unique_ptr<AtomicFile>> file = AtomicFile::Create(BlobPath(id));
    status = file.status();
    if (status.ok()) {
      if (fault.has_value()) (*file)->ForTesting_SetFault(*fault);
      status = (*file)->Append(bytes);
      if (status.ok()) status = (*file)->Commit();
    }
  }
  if (!status.ok()) unlink(OwnersPath(id).c_str());

  absl::MutexLock lock(&mu_);
  reserved_bytes_ -= n_bytes;
  pending_.erase(id);
  pending_done_.SignalAll();
  if (!status.ok()) return WithContext(status, absl::StrCat("storing blob '", id, "'"));
  Entry& entry = entries_[id];
  entry.n_bytes = n_bytes;
  entry.owners = {tenant};
  entry.generation = next_generation_++;
  entry.lru_tick = next_tick_++;
  lru_[entry.lru_tick] = id;
  entry.mtime_unix_ms = NowUnixMs();
  total_bytes_ += n_bytes;
  return PutResult{true, n_bytes};
}

absl::StatusOr<BlobHandle> FileBlobStore::Get(const std::string& id, const std::string& tenant) {
  CTXMEM_RETURN_IF_ERROR(CheckId(id));
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end() || !it->second.owners.contains(tenant)) return NotFound(id);
    Entry& entry = it->second;
    ++entry.n_pins;
    Touch(id, &entry);
    generation = entry.generation;
    if (std::shared_ptr<const Opened> opened = entry.opened.lock()) {
      return BlobHandle(id, std::move(opened), std::make_unique<Pin>(this, id, generation));
    }
  }
  // Pinned from here on: `pin` unpins on every return below.
  auto pin = std::make_unique<Pin>(this, id, generation);
  const std::string path = BlobPath(id);
  absl::StatusOr<std::unique_ptr<weights::MappedFile>> file = weights::MappedFile::Open(path);
  absl::StatusOr<BlobInfo> info = file.ok() ? VerifyBlob(Bytes(**file)) : file.status();
  if (!info.ok()) {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    const bool same = it != entries_.end() && it->second.generation == generation;
    if (absl::IsDataLoss(info.status())) {
      if (same) Quarantine(id);
      return absl::DataLossError(absl::StrCat("blob '", id, "' failed verification and was ",
                                              "quarantined: ", info.status().message()));
    }
    if (absl::IsNotFound(info.status())) {
      if (same) RemoveEntry(id);  // removed behind the store's back
      return NotFound(id);
    }
    return WithContext(info.status(), absl::StrCat("blob '", id, "'"));
  }
  auto opened = std::make_shared<Opened>();
  opened->file = *std::move(file);
  opened->blob_info = *std::move(info);
  std::shared_ptr<const Opened> shared = opened;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it != entries_.end() && it->second.generation == generation) {
      std::shared_ptr<const Opened> current = it->second.opened.lock();
      if (current != nullptr) {
        shared = std::move(current);
      } else {
        it->second.opened = opened;
      }
    }
  }
  utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // best effort: LRU order across restarts
  return BlobHandle(id, std::move(shared), std::move(pin));
}

void FileBlobStore::Unpin(const std::string& id, uint64_t generation) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it != entries_.end() && it->second.generation == generation && it->second.n_pins > 0) {
    --it->second.n_pins;
  }
}

absl::StatusOr<StoredBlobStat> FileBlobStore::Stat(const std::string& id,
                                                   const std::string& tenant) const {
  CTXMEM_RETURN_IF_ERROR(CheckId(id));
  absl::MutexLock lock(&mu_);
  const Entry* entry = FindOwned(id, tenant);
  if (entry == nullptr) return NotFound(id);
  return StoredBlobStat{id, entry->n_bytes, entry->n_pins, entry->mtime_unix_ms};
}

absl::StatusOr<BlobPage> FileBlobStore::List(const std::string& tenant, int64_t page_size,
                                             const std::string& page_token) const {
  if (!page_token.empty()) CTXMEM_RETURN_IF_ERROR(CheckId(page_token));
  const int64_t limit = std::clamp<int64_t>(page_size, 1, options_.list_page_size_max);
  BlobPage page;
  absl::MutexLock lock(&mu_);
  for (auto it = entries_.upper_bound(page_token); it != entries_.end(); ++it) {
    if (!it->second.owners.contains(tenant)) continue;
    if (static_cast<int64_t>(page.blobs.size()) == limit) {
      page.next_page_token = page.blobs.back().id;
      break;
    }
    page.blobs.push_back(
        {it->first, it->second.n_bytes, it->second.n_pins, it->second.mtime_unix_ms});
  }
  return page;
}

absl::Status FileBlobStore::Delete(const std::string& id, const std::string& tenant) {
  CTXMEM_RETURN_IF_ERROR(CheckId(id));
  absl::MutexLock lock(&mu_);
  while (pending_.contains(id)) pending_done_.Wait(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || !it->second.owners.contains(tenant)) return NotFound(id);
  if (it->second.owners.size() > 1) {
    std::set<std::string> owners = it->second.owners;
    owners.erase(tenant);
    CTXMEM_RETURN_IF_ERROR(WriteOwners(id, owners));
    it->second.owners = std::move(owners);
    return absl::OkStatus();
  }
  // Blob first, then its owners (see the invariants).
  if (unlink(BlobPath(id).c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(
        absl::StrCat("cannot delete ", BlobPath(id), ": ", std::strerror(errno)));
  }
  unlink(OwnersPath(id).c_str());
  RemoveEntry(id);
  return SyncDirectory(blobs_dir_);
}

std::optional<BlobStoreUsage> FileBlobStore::usage() const {
  absl::MutexLock lock(&mu_);
  return BlobStoreUsage{total_bytes_, static_cast<int64_t>(entries_.size()), options_.max_bytes};
}

absl::StatusOr<std::string> FileBlobStore::ReadHeader(const std::string& id,
                                                      const std::string& tenant) const {
  CTXMEM_RETURN_IF_ERROR(CheckId(id));
  {
    absl::MutexLock lock(&mu_);
    if (FindOwned(id, tenant) == nullptr) return NotFound(id);
  }
  const std::string path = BlobPath(id);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound(id);  // deleted meanwhile
    return absl::InternalError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  struct stat st = {};
  std::string header(8, '\0');
  absl::Status status = absl::OkStatus();
  if (fstat(fd, &st) != 0 || pread(fd, header.data(), 8, 0) != 8) {
    status = absl::DataLossError(absl::StrCat(path, " is not a memory blob (no header length)"));
  } else {
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i)
      n |= static_cast<uint64_t>(static_cast<uint8_t>(header[i])) << (8 * i);
    if (n > SafetensorsLayout::kMaxHeaderBytes || n + 8 > static_cast<uint64_t>(st.st_size)) {
      status = absl::DataLossError(
          absl::StrCat(path, " has a header length of ", n, " bytes, past its size ", st.st_size));
    } else {
      header.resize(8 + n);
      if (pread(fd, header.data() + 8, n, 8) != static_cast<ssize_t>(n)) {
        status = absl::DataLossError(absl::StrCat("cannot read the header of ", path));
      }
    }
  }
  close(fd);
  if (!status.ok()) return status;
  return header;
}

uint64_t FileBlobStore::total_bytes() const {
  absl::MutexLock lock(&mu_);
  return total_bytes_;
}

int64_t FileBlobStore::n_blobs() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(entries_.size());
}

void FileBlobStore::ForTesting_SetNextWriteFault(const AtomicFileFault& fault) {
  absl::MutexLock lock(&mu_);
  next_fault_ = fault;
}

}  // namespace ctxmem::blob
