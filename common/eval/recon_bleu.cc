#include "common/eval/recon_bleu.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace ctxmem::eval {
namespace {

std::map<std::vector<int32_t>, int64_t> NGrams(const std::vector<int32_t>& ids, size_t n) {
  std::map<std::vector<int32_t>, int64_t> counts;
  for (size_t i = 0; i + n <= ids.size(); ++i) {
    ++counts[std::vector<int32_t>(ids.begin() + i, ids.begin() + i + n)];
  }
  return counts;
}

}  // namespace

double Bleu4(const std::vector<int32_t>& candidate, const std::vector<int32_t>& reference) {
  if (candidate.empty() || reference.empty()) return 0.0;
  double log_sum = 0;
  int orders = 0;
  for (size_t n = 1; n <= 4; ++n) {
    if (candidate.size() < n) break;
    const auto cand = NGrams(candidate, n);
    const auto ref = NGrams(reference, n);
    int64_t matched = 0, total = 0;
    for (const auto& [gram, count] : cand) {
      total += count;
      auto it = ref.find(gram);
      if (it != ref.end()) matched += std::min(count, it->second);
    }
    const double p = matched > 0 ? static_cast<double>(matched) / total : 0.1 / total;
    log_sum += std::log(p);
    ++orders;
  }
  const double c = static_cast<double>(candidate.size());
  const double r = static_cast<double>(reference.size());
  const double bp = c >= r ? 1.0 : std::exp(1.0 - r / c);
  return bp * std::exp(log_sum / orders);
}

}  // namespace ctxmem::eval
