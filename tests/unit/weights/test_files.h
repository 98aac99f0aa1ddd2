#pragma once
// Test-only helpers for common/weights tests: byte-level GGUF and safetensors writers (so tests
// can build valid files and then break them on purpose) and the golden files' folder; the temp
// folder, file and model-path helpers come from tests/unit/test_files.h. Not thread-safe.

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/escaping.h"
#include "common/weights/ggml_type.h"
#include "common/weights/gguf_file.h"
#include "nlohmann/json.hpp"
#include "tests/unit/test_files.h"

namespace ctxmem::weights::testing {

using ctxmem::testing::ReadBytes;
using ctxmem::testing::WriteBytes;

// Temp folders of weights tests are named ctxmem_weights_*.
class TempDir : public ctxmem::testing::TempDir {
 public:
  TempDir() : ctxmem::testing::TempDir("ctxmem_weights") {}
};

// Little-endian encoders for building raw file contents.
template <typename T>
void Put(std::string* out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out->append(bytes, sizeof(T));
}
inline void PutString(std::string* out, std::string_view s) {
  Put<uint64_t>(out, s.size());
  out->append(s);
}

// Encoded GGUF values (the bytes after the u32 value type).
inline std::string GgufU32(uint32_t v) {
  std::string s;
  Put(&s, v);
  return s;
}
inline std::string GgufStr(std::string_view v) {
  std::string s;
  PutString(&s, v);
  return s;
}
// An array of `count` values of `elem_type`, already encoded back to back in `elems`.
inline std::string GgufArrayBytes(GgufValueType elem_type, uint64_t count, std::string_view elems) {
  std::string s;
  Put<uint32_t>(&s, static_cast<uint32_t>(elem_type));
  Put<uint64_t>(&s, count);
  s.append(elems);
  return s;
}

// Where an integer field of a built file sits, for tests that overwrite it with bad values.
struct IntField {
  size_t pos;  // byte offset in the file
  int width;   // bytes: 4 or 8
  std::string what;
};

// Builds GGUF files byte by byte. Tensor data is laid out in AddTensor order, each tensor
// padded to the alignment, which is what llama.cpp writes.
class GgufWriter {
 public:
  void set_version(uint32_t version) { version_ = version; }
  void set_magic(uint32_t magic) { magic_ = magic; }

  // Adds a key with an already encoded value (see GgufU32, GgufStr, GgufArrayBytes).
  void AddRaw(std::string_view key, GgufValueType type, std::string value) {
    kvs_.push_back({std::string(key), static_cast<uint32_t>(type), std::move(value)});
  }
  template <typename T>
  void AddScalar(std::string_view key, GgufValueType type, T v) {
    std::string s;
    Put(&s, v);
    AddRaw(key, type, std::move(s));
  }
  void AddString(std::string_view key, std::string_view v) {
    AddRaw(key, GgufValueType::kString, GgufStr(v));
  }
  void AddStringArray(std::string_view key, const std::vector<std::string>& values) {
    std::string elems;
    for (const std::string& v : values) PutString(&elems, v);
    AddRaw(key, GgufValueType::kArray,
           GgufArrayBytes(GgufValueType::kString, values.size(), elems));
  }
  template <typename T>
  void AddArray(std::string_view key, GgufValueType elem_type, const std::vector<T>& values) {
    std::string elems;
    for (const T& v : values) Put(&elems, v);
    AddRaw(key, GgufValueType::kArray, GgufArrayBytes(elem_type, values.size(), elems));
  }
  // Sets general.alignment (a u32 key) and pads with it.
  void SetAlignment(uint32_t alignment) {
    alignment_ = alignment;
    AddScalar<uint32_t>("general.alignment", GgufValueType::kUint32, alignment);
  }

  // `shape` is outermost first; `data` must hold GgmlByteSize(type, n_elements) bytes for a
  // valid file. `offset_override` >= 0 replaces the computed relative offset.
  void AddTensor(std::string_view name, GgmlType type, std::vector<int64_t> shape, std::string data,
                 int64_t offset_override = -1) {
    tensors_.push_back({std::string(name), static_cast<uint32_t>(type), std::move(shape),
                        std::move(data), offset_override});
  }
  void AddTensorF32(std::string_view name, std::vector<int64_t> shape,
                    const std::vector<float>& values) {
    std::string data;
    for (float v : values) Put(&data, v);
    AddTensor(name, GgmlType::kF32, std::move(shape), std::move(data));
  }

  // The whole file. `fields` (optional) receives the position of every count, length, type,
  // dimension and offset field.
  std::string Build(std::vector<IntField>* fields = nullptr) const {
    std::string out;
    auto mark = [&](int width, std::string what) {
      if (fields != nullptr) fields->push_back({out.size(), width, std::move(what)});
    };
    Put<uint32_t>(&out, magic_);
    mark(4, "version");
    Put<uint32_t>(&out, version_);
    mark(8, "tensor_count");
    Put<uint64_t>(&out, tensors_.size());
    mark(8, "kv_count");
    Put<uint64_t>(&out, kvs_.size());
    for (const Kv& kv : kvs_) {
      mark(8, "key length of " + kv.key);
      PutString(&out, kv.key);
      mark(4, "value type of " + kv.key);
      Put<uint32_t>(&out, kv.type);
      if (kv.value.size() == 4 || kv.value.size() == 8) {
        if (kv.type != static_cast<uint32_t>(GgufValueType::kString)) {
          mark(static_cast<int>(kv.value.size()), "value of " + kv.key);
        }
      }
      if (kv.type == static_cast<uint32_t>(GgufValueType::kString)) {
        mark(8, "string length of " + kv.key);
      } else if (kv.type == static_cast<uint32_t>(GgufValueType::kArray)) {
        mark(4, "array element type of " + kv.key);
        if (fields != nullptr) fields->push_back({out.size() + 4, 8, "array count of " + kv.key});
      }
      out.append(kv.value);
    }
    std::vector<uint64_t> offsets;
    uint64_t next = 0;
    for (const Tensor& t : tensors_) {
      offsets.push_back(t.offset_override >= 0 ? static_cast<uint64_t>(t.offset_override) : next);
      next += (t.data.size() + alignment_ - 1) / alignment_ * alignment_;
    }
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const Tensor& t = tensors_[i];
      mark(8, "name length of " + t.name);
      PutString(&out, t.name);
      mark(4, "n_dims of " + t.name);
      Put<uint32_t>(&out, static_cast<uint32_t>(t.shape.size()));
      for (size_t d = t.shape.size(); d > 0; --d) {
        mark(8, "ne of " + t.name);
        Put<uint64_t>(&out, static_cast<uint64_t>(t.shape[d - 1]));
      }
      mark(4, "type of " + t.name);
      Put<uint32_t>(&out, t.type);
      mark(8, "offset of " + t.name);
      Put<uint64_t>(&out, offsets[i]);
    }
    out.resize((out.size() + alignment_ - 1) / alignment_ * alignment_, '\0');
    const size_t data_start = out.size();
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const size_t at = data_start + offsets[i];
      if (out.size() < at + tensors_[i].data.size()) out.resize(at + tensors_[i].data.size());
      std::memcpy(out.data() + at, tensors_[i].data.data(), tensors_[i].data.size());
    }
    if (out.size() < data_start + next) out.resize(data_start + next);
    return out;
  }

 private:
  struct Kv {
    std::string key;
    uint32_t type;
    std::string value;
  };
  struct Tensor {
    std::string name;
    uint32_t type;
    std::vector<int64_t> shape;
    std::string data;
    int64_t offset_override;
  };
  uint32_t magic_ = 0x46554747;  // "GGUF"
  uint32_t version_ = 3;
  uint64_t alignment_ = 32;
  std::vector<Kv> kvs_;
  std::vector<Tensor> tensors_;
};

// Builds safetensors files: tensors are packed back to back in AddTensor order.
class SafetensorsWriter {
 public:
  void AddTensor(std::string_view name, std::string_view dtype, std::vector<int64_t> shape,
                 std::string data) {
    tensors_.push_back({std::string(name), std::string(dtype), std::move(shape), std::move(data)});
  }
  void AddTensorF32(std::string_view name, std::vector<int64_t> shape,
                    const std::vector<float>& values) {
    std::string data;
    for (float v : values) Put(&data, v);
    AddTensor(name, "F32", std::move(shape), std::move(data));
  }
  void AddMetadata(std::string_view key, std::string_view value) {
    metadata_.emplace_back(std::string(key), std::string(value));
  }

  // The JSON header text (keys and values here are plain ASCII, no escaping needed).
  std::string Header() const {
    std::string h = "{";
    bool first = true;
    if (!metadata_.empty()) {
      h += "\"__metadata__\":{";
      for (size_t i = 0; i < metadata_.size(); ++i) {
        if (i > 0) h += ",";
        h += "\"" + metadata_[i].first + "\":\"" + metadata_[i].second + "\"";
      }
      h += "}";
      first = false;
    }
    uint64_t offset = 0;
    for (const Tensor& t : tensors_) {
      if (!first) h += ",";
      first = false;
      h += "\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
      for (size_t d = 0; d < t.shape.size(); ++d) {
        if (d > 0) h += ",";
        h += std::to_string(t.shape[d]);
      }
      h += "],\"data_offsets\":[" + std::to_string(offset) + "," +
           std::to_string(offset + t.data.size()) + "]}";
      offset += t.data.size();
    }
    return h + "}";
  }

  std::string Data() const {
    std::string d;
    for (const Tensor& t : tensors_) d += t.data;
    return d;
  }

  std::string Build() const { return Assemble(Header(), Data()); }

  // A file from a given header text and data section.
  static std::string Assemble(std::string_view header, std::string_view data) {
    std::string out;
    Put<uint64_t>(&out, header.size());
    out.append(header);
    out.append(data);
    return out;
  }

 private:
  struct Tensor {
    std::string name;
    std::string dtype;
    std::vector<int64_t> shape;
    std::string data;
  };
  std::vector<Tensor> tensors_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

using ctxmem::testing::BundledModelPath;
using ctxmem::testing::FileExists;

// tests/data/weights, from $CTXMEM_TEST_DATA_DIR or the compile-time default.
inline std::string WeightsDataDir() {
  const char* env = std::getenv("CTXMEM_TEST_DATA_DIR");
  if (env != nullptr && *env != '\0') return std::string(env) + "/weights";
#ifdef CTXMEM_TEST_DATA_DIR
  return std::string(CTXMEM_TEST_DATA_DIR) + "/weights";
#else
  return "tests/data/weights";
#endif
}

// Parses a golden JSON file; a discarded value (is_discarded()) when missing or malformed.
inline nlohmann::json LoadJson(const std::string& path) {
  const std::string text = ReadBytes(path);
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

// Decodes base64 (as written by make_weights_goldens.py); empty on malformed input.
inline std::string Base64Bytes(const std::string& b64) {
  std::string out;
  if (!absl::Base64Unescape(b64, &out)) out.clear();
  return out;
}
inline std::vector<float> Base64Floats(const std::string& b64) {
  const std::string bytes = Base64Bytes(b64);
  std::vector<float> out(bytes.size() / sizeof(float));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

// Equal bit for bit, except that any NaN equals any NaN.
inline bool SameFloat(float a, float b) {
  if (a != a && b != b) return true;
  uint32_t ia, ib;
  std::memcpy(&ia, &a, sizeof(ia));
  std::memcpy(&ib, &b, sizeof(ib));
  return ia == ib;
}

}  // namespace ctxmem::weights::testing
