#pragma once
// Bleu4(): sentence-level BLEU-4 (Papineni et al. 2002) of a candidate token sequence against
// one reference, on token ids: the geometric mean of the modified (clipped) n-gram precisions
// for n = 1..4 with uniform weights, times the brevity penalty exp(1 - |ref| / |cand|) when the
// candidate is shorter. A precision with no matching n-gram counts as 0.1 / total (NLTK's
// SmoothingFunction().method1, epsilon 0.1), so one missing 4-gram does not zero the score. An
// empty candidate or reference scores 0; orders longer than the candidate are left out of the
// mean (candidates here are >= 4 tokens; tests compare with NLTK's sentence_bleu).
// Thread-safety: pure function.

#include <cstdint>
#include <vector>

namespace ctxmem::eval {

double Bleu4(const std::vector<int32_t>& candidate, const std::vector<int32_t>& reference);

}  // namespace ctxmem::eval
