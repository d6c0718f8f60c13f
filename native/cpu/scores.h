// The CPU scoring phase: every valid token's score (docs/policies.md), the first step of
// compress and all of tokenScores. The selection and the gather after it are shared.
#pragma once
#include <cstdint>

#include "../core/job.h"

namespace kvtrim::cpu {

// scores[row * seq + t] = the score of token t of (batch, head) row `row`, for t below the
// row's valid length (job.plan.lengths), canonical (NaN 0x7FC00000, zero +0). Positions at or
// past a length are NaN when pad_nan, else left as they are. Score::Given copies job.scores.
// OutOfMemory when scratch cannot be had; never throws.
Status score_tokens(const CompressJob& job, float* scores, bool pad_nan);

}  // namespace kvtrim::cpu
