// The CPU backend: key norms and the fused compress (norms, per-row select, gather).
#pragma once
#include <cstdint>

#include "../core/job.h"

namespace kvtrim::cpu {

// out[r] = L2 norm of key row r for every row of a [B, H, S, D] tensor (B * H * S rows).
void key_norms(DType t, const void* keys, int64_t n_rows, int64_t head_dim, float* out);

// Fills job.out_keys, job.out_values and job.out_indices. The job was validated by make_plan.
// Returns an OutOfMemory status if scratch cannot be allocated; never throws.
Status compress(const CompressJob& job);

// tokenScores: fills job.out with every token's score (docs/policies.md; scores.cc).
Status token_scores(const ScoreJob& job);

}  // namespace kvtrim::cpu
