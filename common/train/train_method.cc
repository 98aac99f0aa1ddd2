#include "common/train/train_method.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/learned/llm_fuser.h"
#include "common/learned/perceiver_fuser.h"
#include "common/learned/perceiver_weights.h"
#include "common/model/torch_call.h"
#include "common/model/transformer.h"
#include "common/status.h"
#include "common/train/fuser_objective.h"
#include "common/train/llm_fuser_module.h"
#include "common/train/perceiver_fuser_module.h"
#include "common/train/perceiver_module.h"
#include "common/train/trainer.h"

namespace ctxmem::train {
namespace {

class PerceiverMethod final : public TrainMethod {
 public:
  PerceiverMethod(std::shared_ptr<PerceiverModule> m, PerceiverLossOptions loss)
      : m_(std::move(m)), loss_(loss) {}
  torch::nn::Module& module() override { return *m_; }
  absl::StatusOr<WindowLoss> Loss(const model::Transformer& model, absl::Span<const int32_t> w,
                                  double scale) override {
    return PerceiverWindowLoss(model, *m_, w, loss_, scale);
  }
  absl::Status Save(const std::string& path,
                    const std::map<std::string, std::string>& meta) const override {
    return m_->Save(path, meta);
  }
  std::string eval_pruner() const override { return "perceiver"; }
  std::string objective() const override {
    return std::string(PerceiverObjectiveName(loss_.objective));
  }
  nlohmann::json shape() const override {
    return {{"query_len", m_->shape().query_len},
            {"d_query", m_->shape().d_query},
            {"temperature", m_->shape().temperature}};
  }

 private:
  std::shared_ptr<PerceiverModule> m_;
  PerceiverLossOptions loss_;
};

class PerceiverFuserMethod final : public TrainMethod {
 public:
  PerceiverFuserMethod(std::shared_ptr<PerceiverFuserModule> m, PerceiverLossOptions loss)
      : m_(std::move(m)), loss_(loss) {}
  torch::nn::Module& module() override { return *m_; }
  absl::StatusOr<WindowLoss> Loss(const model::Transformer& model, absl::Span<const int32_t> w,
                                  double scale) override {
    TrainFuseFn fuse =
        [this](const std::vector<at::Tensor>&, const std::vector<at::Tensor>&,
               const std::vector<at::Tensor>& k, const std::vector<at::Tensor>& v,
               int64_t target) -> absl::StatusOr<std::vector<std::pair<at::Tensor, at::Tensor>>> {
      return m_->Fuse(k, v, target);
    };
    return FuserWindowLoss(model, fuse, w, loss_, scale);
  }
  absl::Status Save(const std::string& path,
                    const std::map<std::string, std::string>& meta) const override {
    return m_->Save(path, meta);
  }
  std::string eval_pruner() const override { return "perceiver_fuser"; }
  std::string objective() const override { return "lm"; }
  nlohmann::json shape() const override {
    const learned::PerceiverFuserShape& s = m_->shape();
    return {{"query_len", s.query_len},
            {"d_query", s.d_query},
            {"temperature", s.temperature},
            {"fuse_k", s.fuse_k},
            {"norm", s.seed_norm ? "seed" : "pre"}};
  }

 private:
  std::shared_ptr<PerceiverFuserModule> m_;
  PerceiverLossOptions loss_;
};

class LlmFuserMethod final : public TrainMethod {
 public:
  LlmFuserMethod(std::shared_ptr<LlmFuserModule> m, PerceiverLossOptions loss)
      : m_(std::move(m)), loss_(loss) {}
  torch::nn::Module& module() override { return *m_; }
  absl::StatusOr<WindowLoss> Loss(const model::Transformer& model, absl::Span<const int32_t> w,
                                  double scale) override {
    TrainFuseFn fuse =
        [this, &model](
            const std::vector<at::Tensor>& pk, const std::vector<at::Tensor>& pv,
            const std::vector<at::Tensor>& k, const std::vector<at::Tensor>& v,
            int64_t target) -> absl::StatusOr<std::vector<std::pair<at::Tensor, at::Tensor>>> {
      std::vector<at::Tensor> ak, av;
      for (size_t l = 0; l < k.size(); ++l) {
        ak.push_back(at::cat({pk[l], k[l]}, 1));  // [h, S + n, d]
        av.push_back(at::cat({pv[l], v[l]}, 1));
      }
      return learned::LlmFuseForward(model, m_->tensors(), ak, av, target);
    };
    return FuserWindowLoss(model, fuse, w, loss_, scale);
  }
  absl::Status Save(const std::string& path,
                    const std::map<std::string, std::string>& meta) const override {
    return m_->Save(path, meta);
  }
  std::string eval_pruner() const override { return "llm_fuser"; }
  std::string objective() const override { return "lm"; }
  nlohmann::json shape() const override {
    return {{"query_len", m_->shape().query_len},
            {"lora_rank", m_->shape().rank},
            {"lora_alpha", m_->shape().alpha}};
  }

 private:
  std::shared_ptr<LlmFuserModule> m_;
  PerceiverLossOptions loss_;
};

}  // namespace

absl::Status CheckTrainMethod(const std::string& method) {
  if (method == "perceiver" || method == "perceiver_fuser" || method == "llm_fuser") {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--method ", method, " unknown; trainable: perceiver, perceiver_fuser, llm_fuser"));
}

absl::StatusOr<std::unique_ptr<TrainMethod>> MakeTrainMethod(const TrainOptions& o,
                                                             const model::Transformer& model,
                                                             const std::string& init) {
  CTXMEM_RETURN_IF_ERROR(CheckTrainMethod(o.method));
  const model::ModelConfig& mc = model.config();
  if (o.method == "perceiver") {
    std::shared_ptr<PerceiverModule> m;
    if (!init.empty()) {
      CTXMEM_ASSIGN_OR_RETURN(learned::PerceiverWeights w, learned::PerceiverWeights::Load(init));
      CTXMEM_RETURN_IF_ERROR(w.CheckFits(mc.n_layers, mc.n_kv_heads, mc.head_dim));
      CTXMEM_ASSIGN_OR_RETURN(m, PerceiverModule::FromWeights(w));
    } else {
      PerceiverShape shape = o.shape;
      shape.n_layers = mc.n_layers;
      shape.d_model = mc.n_kv_heads * mc.head_dim;
      if (shape.d_query % mc.n_kv_heads != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--d-query=", shape.d_query, " must be divisible by n_kv_heads=", mc.n_kv_heads));
      }
      CTXMEM_ASSIGN_OR_RETURN(m, PerceiverModule::Create(shape));
    }
    return std::unique_ptr<TrainMethod>(std::make_unique<PerceiverMethod>(m, o.loss));
  }
  if (o.method == "perceiver_fuser") {
    std::shared_ptr<PerceiverFuserModule> m;
    if (!init.empty()) {
      CTXMEM_ASSIGN_OR_RETURN(learned::PerceiverFuserWeights w,
                              learned::PerceiverFuserWeights::Load(init));
      CTXMEM_RETURN_IF_ERROR(w.CheckFits(mc.n_layers, mc.n_kv_heads, mc.head_dim));
      CTXMEM_ASSIGN_OR_RETURN(m, PerceiverFuserModule::FromWeights(w));
    } else {
      learned::PerceiverFuserShape s;
      s.n_layers = mc.n_layers;
      s.query_len = o.shape.query_len;
      s.d_query = o.shape.d_query;
      s.d_model = mc.n_kv_heads * mc.head_dim;
      s.head_dim = mc.head_dim;
      s.temperature = o.shape.temperature;
      s.fuse_k = o.fuse_k;
      if (o.fuser_norm != "pre" && o.fuser_norm != "seed") {
        return absl::InvalidArgumentError(
            absl::StrCat("--fuser-norm ", o.fuser_norm, ": pre | seed"));
      }
      s.seed_norm = o.fuser_norm == "seed";
      if (s.d_query % mc.n_kv_heads != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--d-query=", s.d_query, " must be divisible by n_kv_heads=", mc.n_kv_heads));
      }
      CTXMEM_ASSIGN_OR_RETURN(m, PerceiverFuserModule::Create(s));
    }
    return std::unique_ptr<TrainMethod>(std::make_unique<PerceiverFuserMethod>(m, o.loss));
  }
  std::shared_ptr<LlmFuserModule> m;
  if (!init.empty()) {
    CTXMEM_ASSIGN_OR_RETURN(learned::LlmFuserWeights w, learned::LlmFuserWeights::Load(init));
    CTXMEM_RETURN_IF_ERROR(w.CheckFits(model));
    CTXMEM_ASSIGN_OR_RETURN(m, LlmFuserModule::FromWeights(w));
  } else {
    LlmFuserShape s;
    s.query_len = o.shape.query_len;
    s.rank = o.lora_rank;
    s.alpha = o.lora_alpha > 0 ? o.lora_alpha : 2.0 * static_cast<double>(o.lora_rank);
    CTXMEM_ASSIGN_OR_RETURN(m, LlmFuserModule::Create(model, s));
  }
  return std::unique_ptr<TrainMethod>(std::make_unique<LlmFuserMethod>(m, o.loss));
}

}  // namespace ctxmem::train
