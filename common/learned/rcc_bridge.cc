#include "common/learned/rcc_bridge.h"

#include <ATen/ATen.h>

#include <cmath>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/blob/safetensors_writer.h"
#include "common/learned/learned_file.h"
#include "common/model/torch_call.h"
#include "common/status.h"
#include "common/weights/safetensors_file.h"

namespace ctxmem::learned {
namespace {

absl::Status CheckShape(const RccBridgeShape& s) {
  if (s.n_layers < 1 || s.hidden < 1 || s.rank < 0 || s.rank > s.hidden) {
    return absl::InvalidArgumentError(absl::StrCat("rcc bridge shape: n_layers=", s.n_layers,
                                                   " hidden=", s.hidden, " rank=", s.rank,
                                                   " (need n_layers, hidden >= 1, 0 <= rank <= "
                                                   "hidden; rank 0 = full)"));
  }
  if (s.rate < 1 || s.window < s.rate || s.window % s.rate != 0) {
    return absl::InvalidArgumentError(absl::StrCat("rcc window=", s.window, " rate=", s.rate,
                                                   ": need rate >= 1 and window a multiple of "
                                                   "rate"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RccVariant> ParseRccVariant(std::string_view name) {
  if (name == "paper") return RccVariant::kPaper;
  if (name == "residual") return RccVariant::kResidual;
  return absl::InvalidArgumentError(
      absl::StrCat("rcc variant '", std::string(name), "': expected paper | residual"));
}

std::string_view RccVariantName(RccVariant variant) {
  return variant == RccVariant::kPaper ? "paper" : "residual";
}

RccBridge RccBridge::Stride(int64_t n_layers, int64_t hidden) {
  RccBridge b;
  b.shape_.variant = RccVariant::kResidual;
  b.shape_.n_layers = n_layers;
  b.shape_.hidden = hidden;
  return b;
}

absl::StatusOr<RccBridge> RccBridge::Create(const RccBridgeShape& shape) {
  CTXMEM_RETURN_IF_ERROR(CheckShape(shape));
  RccBridge b;
  b.shape_ = shape;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("rcc bridge init", [&] {
    const int64_t h = shape.hidden;
    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    for (int64_t l = 0; l < shape.n_layers; ++l) {
      Projection p;
      if (shape.variant == RccVariant::kPaper) {
        if (shape.rank == 0) {
          p.weight = at::randn({h, h}, f32) * 0.02;  // [out, in]
        } else {
          p.up = at::randn({h, shape.rank}, f32) * 0.02;
          p.down = at::randn({shape.rank, h}, f32) * 0.02;
        }
      } else if (shape.rank == 0) {
        p.weight = at::zeros({h, h}, f32);
      } else {
        p.up = at::zeros({h, shape.rank}, f32);
        p.down = at::randn({shape.rank, h}, f32) / std::sqrt(static_cast<double>(h));
      }
      b.proj_.push_back(std::move(p));
    }
  }));
  return b;
}

absl::StatusOr<RccBridge> RccBridge::Load(const std::string& path) {
  CTXMEM_ASSIGN_OR_RETURN(std::unique_ptr<weights::SafetensorsFile> file,
                          weights::SafetensorsFile::Open(path));
  auto bad = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", parts...));
  };
  const auto& meta = file->metadata();
  auto get = [&](const std::string& key) -> std::string {
    auto it = meta.find(key);
    return it == meta.end() ? "" : it->second;
  };
  if (get("ctxmem.method") != "rcc") {
    return bad("ctxmem.method is '", get("ctxmem.method"), "', expected 'rcc'");
  }
  RccBridge b;
  CTXMEM_ASSIGN_OR_RETURN(b.shape_.variant, ParseRccVariant(get("rcc.variant")));
  if (!absl::SimpleAtoi(get("rcc.window"), &b.shape_.window) ||
      !absl::SimpleAtoi(get("rcc.rate"), &b.shape_.rate)) {
    return bad("metadata rcc.window='", get("rcc.window"), "' / rcc.rate='", get("rcc.rate"),
               "' must be integers");
  }
  std::map<int64_t, Projection> by_l;
  for (const weights::StTensorInfo& info : file->tensors()) {
    int64_t l = 0;
    std::string part;
    if (!LearnedFile::SplitLayerName(info.name, "proj.", &l, &part) ||
        (part != "weight" && part != "up" && part != "down")) {
      return bad("unexpected tensor '", info.name,
                 "'; an rcc bridge holds proj.<l>.weight or proj.<l>.up + proj.<l>.down");
    }
    if (info.dtype != weights::StDtype::kF32 && info.dtype != weights::StDtype::kF16 &&
        info.dtype != weights::StDtype::kBF16) {
      return bad("tensor '", info.name, "' has dtype ",
                 std::string(weights::StDtypeName(info.dtype)), "; expected F32, F16 or BF16");
    }
    if (info.shape.size() != 2) return bad("tensor '", info.name, "' must be 2-d");
    at::Tensor t = at::empty({info.shape[0], info.shape[1]}, at::kFloat);
    CTXMEM_RETURN_IF_ERROR(file->ReadF32(info, t.data_ptr<float>()));
    if (!t.isfinite().all().item<bool>()) return bad("tensor '", info.name, "' holds NaN/inf");
    Projection& p = by_l[l];
    (part == "weight" ? p.weight : part == "up" ? p.up : p.down) = t;
  }
  if (by_l.empty()) return bad("no projections (proj.0.weight, ...)");
  for (const auto& [l, p] : by_l) {
    if (l != static_cast<int64_t>(b.proj_.size())) {
      return bad("projection numbers must run 0..n-1; proj.", b.proj_.size(), " is missing");
    }
    b.proj_.push_back(p);
  }
  const Projection& first = b.proj_.front();
  const bool full = first.weight.defined();
  b.shape_.n_layers = static_cast<int64_t>(b.proj_.size());
  b.shape_.hidden = full ? first.weight.size(0) : first.up.defined() ? first.up.size(0) : 0;
  b.shape_.rank = full || !first.up.defined() ? 0 : first.up.size(1);
  const int64_t h = b.shape_.hidden, r = b.shape_.rank;
  for (size_t l = 0; l < b.proj_.size(); ++l) {
    const Projection& p = b.proj_[l];
    const bool ok =
        full ? (!p.up.defined() && !p.down.defined() && p.weight.size(0) == h &&
                p.weight.size(1) == h)
             : (!p.weight.defined() && p.up.defined() && p.down.defined() && p.up.size(0) == h &&
                p.up.size(1) == r && p.down.size(0) == r && p.down.size(1) == h);
    if (!ok || h < 1) {
      return bad("proj.", l, " is weight ", LearnedFile::ShapeString(p.weight), " up ",
                 LearnedFile::ShapeString(p.up), " down ", LearnedFile::ShapeString(p.down),
                 "; expected every projection as proj.0: ",
                 full ? absl::StrCat("weight [", h, ", ", h, "]")
                      : absl::StrCat("up [", h, ", ", r, "] and down [", r, ", ", h, "]"));
    }
  }
  CTXMEM_RETURN_IF_ERROR(WithContext(CheckShape(b.shape_), path));
  return b;
}

absl::Status RccBridge::Save(const std::string& path, bool bf16,
                             const std::map<std::string, std::string>& metadata) const {
  if (!has_tensors()) return absl::FailedPreconditionError("the stride bridge has no tensors");
  std::vector<at::Tensor> keep;  // the bytes the layout borrows
  std::vector<blob::RawTensor> tensors;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("rcc bridge save", [&] {
    for (size_t l = 0; l < proj_.size(); ++l) {
      const Projection& p = proj_[l];
      for (const auto& [name, t] :
           {std::pair{"weight", &p.weight}, std::pair{"up", &p.up}, std::pair{"down", &p.down}}) {
        if (!t->defined()) continue;
        at::Tensor c = t->detach().to(at::kCPU).to(bf16 ? at::kBFloat16 : at::kFloat).contiguous();
        keep.push_back(c);
        tensors.push_back({absl::StrCat("proj.", l, ".", name),
                           bf16 ? weights::StDtype::kBF16 : weights::StDtype::kF32,
                           {c.size(0), c.size(1)},
                           c.data_ptr()});
      }
    }
  }));
  blob::MetadataEntries meta = {{"ctxmem.method", "rcc"},
                                {"rcc.variant", std::string(RccVariantName(shape_.variant))},
                                {"rcc.window", absl::StrCat(shape_.window)},
                                {"rcc.rate", absl::StrCat(shape_.rate)}};
  for (const auto& [k, v] : metadata) {
    if (k != "ctxmem.method" && k.rfind("rcc.", 0) != 0) meta.emplace_back(k, v);
  }
  CTXMEM_ASSIGN_OR_RETURN(blob::SafetensorsLayout layout,
                          blob::SafetensorsLayout::Build(std::move(tensors), std::move(meta)));
  return layout.WriteToFile(path);
}

absl::Status RccBridge::CheckFits(int64_t n_layers, int64_t hidden) const {
  if (n_layers != shape_.n_layers || hidden != shape_.hidden) {
    return absl::InvalidArgumentError(absl::StrCat("rcc bridge is for ", shape_.n_layers,
                                                   " layers x hidden ", shape_.hidden,
                                                   "; the model has ", n_layers, " x ", hidden));
  }
  return absl::OkStatus();
}

at::Tensor RccBridge::Project(int64_t l, const at::Tensor& x) const {
  const Projection& p = proj_[l];
  const c10::Device d = x.device();  // .to() is a no-op on the same device
  if (p.weight.defined()) return at::linear(x, p.weight.to(d));
  return at::linear(at::linear(x, p.down.to(d)), p.up.to(d));  // [.., rank] -> [.., hidden]
}

void RccBridge::MoveTo(c10::Device device) {
  for (Projection& p : proj_) {
    for (at::Tensor* t : {&p.weight, &p.up, &p.down}) {
      if (t->defined()) *t = t->to(device);
    }
  }
}

at::Tensor RccBridge::SlotStream(int64_t l, const at::Tensor& enc, const at::Tensor& dec) const {
  if (shape_.variant == RccVariant::kResidual) {
    return has_tensors() ? enc + Project(l, enc) : enc;
  }
  return l == 0 ? Project(0, enc) : dec + Project(l, enc);
}

std::vector<at::Tensor> RccBridge::parameters() const {
  std::vector<at::Tensor> out;
  for (const Projection& p : proj_) {
    for (const at::Tensor* t : {&p.weight, &p.up, &p.down}) {
      if (t->defined()) out.push_back(*t);
    }
  }
  return out;
}

int64_t RccBridge::n_parameters() const {
  int64_t n = 0;
  for (const at::Tensor& t : parameters()) n += t.numel();
  return n;
}

}  // namespace ctxmem::learned
