// norm.cu: RMSNorm.
#include "common.cuh"

// rmsnorm normalises each row of x (rows of n floats, one block per row)
// and scales it by w: out[r][i] = x[r][i] / sqrt(mean(x[r]^2) + eps) * w[i].
// out may equal x. Used for the attention/FFN norms (one row per token) and
// for qwen3's per-head Q/K norms (one row per token and head). With rows
// non-null, block b reads row rows[b] of x (still writing row b of out):
// the output norm gathers the rows whose logits are wanted.
KERNEL rmsnorm(const float* x, const float* w, float* out, int n, float eps, const int* rows) {
    __shared__ float sh[32];
    const float* xr = x + (i64)(rows ? rows[ctaid()] : ctaid()) * n;
    float* orow = out + (i64)ctaid() * n;
    float ss = 0.0f;
    for (int i = tid(); i < n; i += ntid()) ss += xr[i] * xr[i];
    ss = block_sum(ss, sh);
    float scale = 1.0f / __builtin_sqrtf(ss / (float)n + eps);
    for (int i = tid(); i < n; i += ntid()) orow[i] = xr[i] * scale * w[i];
}
