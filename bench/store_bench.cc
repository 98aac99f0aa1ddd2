// store_bench: put/get throughput of the blob stores, the directory store (the baseline, same
// run) against the S3 store on an S3 endpoint (bench/run_store_bench.sh starts SeaweedFS on
// loopback). For each blob size: BlobStore::Put of a sealed blob (verify + write: fsync'd
// atomic file / PUT or multipart upload with its SHA-256) and BlobStore::Get (read + SHA-256 +
// verify), plus the S3 client's raw PutObject/GetObject (transport only). Medians of --reps.
//
//   store_bench --endpoint http://127.0.0.1:8333 --bucket B --out results.json
//   (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/blob/file_blob_store.h"
#include "common/blob/memory_blob.h"
#include "common/blob/s3_blob_store.h"
#include "nlohmann/json.hpp"

namespace {

using namespace ctxmem;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// A valid sealed blob of about `n_bytes`: 2 layers of bf16 K/V [2, n_kept, 64] and src.
std::string MakeBlob(uint64_t n_bytes, int salt) {
  const int64_t n_layers = 2, n_heads = 2, head_dim = 64;
  const int64_t per_entry = n_layers * (2 * n_heads * head_dim * 2 + n_heads * 8);
  const int64_t n_kept = std::max<int64_t>(1, static_cast<int64_t>(n_bytes) / per_entry);
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<blob::RawTensor> tensors;
  buffers.reserve(3 * n_layers);
  for (int64_t i = 0; i < n_layers; ++i) {
    for (int kv = 0; kv < 2; ++kv) {
      std::vector<uint8_t> b(static_cast<size_t>(n_heads * n_kept * head_dim * 2));
      for (size_t j = 0; j < b.size(); ++j) b[j] = static_cast<uint8_t>((j * 7 + salt + kv) & 0x3f);
      buffers.push_back(std::move(b));
      tensors.push_back({kv == 0 ? blob::KeyTensorName(i) : blob::ValueTensorName(i),
                         weights::StDtype::kBF16,
                         {n_heads, n_kept, head_dim},
                         buffers.back().data()});
    }
    std::vector<uint8_t> src(static_cast<size_t>(8 * n_heads * n_kept));
    for (int64_t j = 0; j < n_heads * n_kept; ++j) std::memcpy(&src[8 * j], &j, 8);
    buffers.push_back(std::move(src));
    tensors.push_back(
        {blob::SrcTensorName(i), weights::StDtype::kI64, {n_heads, n_kept}, buffers.back().data()});
  }
  blob::BlobMetadata m;
  m.model_fingerprint = "sha256:bench";
  m.tokenizer_fingerprint = "sha256:bench";
  m.compression_config = R"({"pruner":"bench"})";
  m.n_original_tokens = n_kept * 4;
  m.n_sinks = 0;
  m.n_kept.assign(static_cast<size_t>(n_layers), n_kept);
  m.kv_dtype = weights::StDtype::kBF16;
  m.created_unix_ms = 1'700'000'000'000;
  m.extra["x.bench_salt"] = std::to_string(salt);
  absl::StatusOr<std::string> sealed = blob::SealBlob(tensors, m);
  if (!sealed.ok()) {
    std::fprintf(stderr, "seal: %s\n", sealed.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(sealed);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Row {
  std::string store, op;
  uint64_t n_bytes;
  double seconds;  // median
};

void Die(const absl::Status& s, const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  std::string endpoint, bucket = "ctxmem-bench", out = "store_bench.json", dir = "/tmp";
  int reps = 5;
  std::vector<uint64_t> sizes = {uint64_t{1} << 20, uint64_t{8} << 20, uint64_t{64} << 20};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--endpoint") endpoint = value;
    if (flag == "--bucket") bucket = value;
    if (flag == "--out") out = value;
    if (flag == "--dir") dir = value;
    if (flag == "--reps") reps = std::atoi(value.c_str());
  }
  const char* id = std::getenv("AWS_ACCESS_KEY_ID");
  const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
  if (endpoint.empty() || id == nullptr || secret == nullptr) {
    std::fprintf(stderr, "need --endpoint and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY\n");
    return 2;
  }
  const std::string root = absl::StrCat(dir, "/ctxmem-store-bench-", getpid());
  std::filesystem::create_directories(root);
  auto file_store = blob::FileBlobStore::Open({.dir = root + "/dir"});
  if (!file_store.ok()) Die(file_store.status(), "dir store");
  blob::S3BlobStoreOptions s3_options;
  s3_options.client.endpoint = endpoint;
  s3_options.client.bucket = bucket;
  s3_options.client.credentials = {id, secret, ""};
  s3_options.prefix = absl::StrCat("bench-", getpid());
  s3_options.staging_dir = root + "/staging";
  auto s3_store = blob::S3BlobStore::Open(s3_options);
  if (!s3_store.ok()) Die(s3_store.status(), "s3 store");

  std::vector<Row> rows;
  for (uint64_t size : sizes) {
    std::vector<double> t_put_dir, t_get_dir, t_put_s3, t_get_s3, t_raw_put, t_raw_get;
    uint64_t n_bytes = 0;
    for (int r = 0; r < reps; ++r) {
      const std::string bytes = MakeBlob(size, r + static_cast<int>(size >> 20) * 100);
      n_bytes = bytes.size();
      const std::string blob_id = absl::StrCat("b", size, "_", r);
      auto t = Clock::now();
      if (auto s = (*file_store)->Put(blob_id, "bench", bytes); !s.ok()) Die(s.status(), "put");
      t_put_dir.push_back(Seconds(t));
      t = Clock::now();
      if (auto s = (*file_store)->Get(blob_id, "bench"); !s.ok()) Die(s.status(), "get");
      t_get_dir.push_back(Seconds(t));
      t = Clock::now();
      if (auto s = (*s3_store)->Put(blob_id, "bench", bytes); !s.ok()) Die(s.status(), "s3 put");
      t_put_s3.push_back(Seconds(t));
      t = Clock::now();
      if (auto s = (*s3_store)->Get(blob_id, "bench"); !s.ok()) Die(s.status(), "s3 get");
      t_get_s3.push_back(Seconds(t));
      const std::string raw_key = absl::StrCat(s3_options.prefix, "/raw/", blob_id);
      t = Clock::now();
      if (auto s = (*s3_store)->client().PutObject(raw_key, bytes, {}, false); !s.ok()) {
        Die(s, "raw put");
      }
      t_raw_put.push_back(Seconds(t));
      std::string got;
      got.reserve(bytes.size());
      t = Clock::now();
      if (auto s = (*s3_store)->client().GetObject(raw_key, 0, 0, &got); !s.ok()) {
        Die(s.status(), "raw get");
      }
      t_raw_get.push_back(Seconds(t));
      (*file_store)->Delete(blob_id, "bench").IgnoreError();
      (*s3_store)->Delete(blob_id, "bench").IgnoreError();
      (*s3_store)->client().DeleteObject(raw_key).IgnoreError();
    }
    rows.push_back({"dir", "put", n_bytes, Median(t_put_dir)});
    rows.push_back({"dir", "get", n_bytes, Median(t_get_dir)});
    rows.push_back({"s3", "put", n_bytes, Median(t_put_s3)});
    rows.push_back({"s3", "get", n_bytes, Median(t_get_s3)});
    rows.push_back({"s3_raw", "put", n_bytes, Median(t_raw_put)});
    rows.push_back({"s3_raw", "get", n_bytes, Median(t_raw_get)});
    std::fprintf(stderr, "size %llu done\n", static_cast<unsigned long long>(n_bytes));
  }
  nlohmann::json json = {{"endpoint", endpoint}, {"reps", reps}, {"rows", nlohmann::json::array()}};
  for (const Row& row : rows) {
    json["rows"].push_back({{"store", row.store},
                            {"op", row.op},
                            {"bytes", row.n_bytes},
                            {"seconds_median", row.seconds},
                            {"mb_per_s", row.n_bytes / 1e6 / row.seconds}});
  }
  std::ofstream(out) << json.dump(1) << "\n";
  std::filesystem::remove_all(root);
  return 0;
}
