#include "common/learned/learned_file.h"

#include <ATen/ATen.h>

#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/blob/safetensors_writer.h"
#include "common/model/torch_call.h"
#include "common/status.h"
#include "common/weights/safetensors_file.h"

namespace ctxmem::learned {

absl::StatusOr<LearnedFile> LearnedFile::Load(const std::string& path) {
  CTXMEM_ASSIGN_OR_RETURN(std::unique_ptr<weights::SafetensorsFile> file,
                          weights::SafetensorsFile::Open(path));
  LearnedFile out;
  out.metadata = file->metadata();
  for (const weights::StTensorInfo& info : file->tensors()) {
    if (info.dtype != weights::StDtype::kF32 && info.dtype != weights::StDtype::kF16 &&
        info.dtype != weights::StDtype::kBF16 && info.dtype != weights::StDtype::kF64) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": tensor '", info.name, "' has dtype ",
                                                     std::string(weights::StDtypeName(info.dtype)),
                                                     "; expected F32, F16, BF16 or F64"));
    }
    at::Tensor t;
    CTXMEM_RETURN_IF_ERROR(model::TorchCall("learned tensor", [&] {
      t = at::empty(std::vector<int64_t>(info.shape.begin(), info.shape.end()), at::kFloat);
    }));
    CTXMEM_RETURN_IF_ERROR(file->ReadF32(info, t.data_ptr<float>()));
    out.tensors[info.name] = t;
  }
  return out;
}

absl::Status LearnedFile::Save(const std::string& path) const {
  std::vector<at::Tensor> keep;
  std::vector<blob::RawTensor> raw;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("learned save", [&] {
    for (const auto& [name, t] : tensors) {
      keep.push_back(t.detach().to(at::kCPU).to(at::kFloat).contiguous());
      raw.push_back(
          {name, weights::StDtype::kF32, keep.back().sizes().vec(), keep.back().data_ptr()});
    }
  }));
  blob::MetadataEntries meta(metadata.begin(), metadata.end());
  CTXMEM_ASSIGN_OR_RETURN(blob::SafetensorsLayout layout,
                          blob::SafetensorsLayout::Build(std::move(raw), std::move(meta)));
  return layout.WriteToFile(path);
}

absl::StatusOr<at::Tensor> LearnedFile::Get(const std::string& source, const std::string& name,
                                            const std::vector<int64_t>& shape) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": tensor ", name, " is missing"));
  }
  const at::Tensor& t = it->second;
  if (t.sizes().vec() != shape) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": tensor ", name, " is [", absl::StrJoin(t.sizes().vec(), ", "),
                     "], expected [", absl::StrJoin(shape, ", "), "]"));
  }
  bool finite = false;
  CTXMEM_RETURN_IF_ERROR(
      model::TorchCall("learned check", [&] { finite = t.isfinite().all().item<bool>(); }));
  if (!finite) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": tensor ", name, " holds a NaN or infinite value"));
  }
  return t;
}

absl::StatusOr<double> LearnedFile::Number(const std::string& source, const std::string& key,
                                           double fallback) const {
  auto it = metadata.find(key);
  if (it == metadata.end()) return fallback;
  double v = 0;
  if (!absl::SimpleAtod(it->second, &v) || !std::isfinite(v)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": metadata ", key, "='", it->second, "' is not a number"));
  }
  return v;
}

std::string LearnedFile::ShapeString(const at::Tensor& t) {
  if (!t.defined()) return "missing";
  std::string out = "[";
  for (int64_t i = 0; i < t.dim(); ++i) absl::StrAppend(&out, i > 0 ? ", " : "", t.size(i));
  return out + "]";
}

bool LearnedFile::SplitLayerName(std::string_view name, std::string_view prefix, int64_t* layer,
                                 std::string* part) {
  if (name.substr(0, prefix.size()) != prefix) return false;
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string_view::npos) return false;
  const std::string_view number = name.substr(prefix.size(), dot - prefix.size());
  if (number.empty() || number.find_first_not_of("0123456789") != std::string_view::npos) {
    return false;
  }
  if (!absl::SimpleAtoi(absl::string_view(number.data(), number.size()), layer)) return false;
  *part = std::string(name.substr(dot + 1));
  return true;
}

}  // namespace ctxmem::learned
