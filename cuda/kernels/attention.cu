// attention.cu: causal multi-head attention with grouped KV heads, for
// decode (one query) and prefill (many), reading the KV cache directly.
#include "common.cuh"

#define ATT_WARPS 8
#define ATT_MAXD 8 // head dims per lane: head_dim <= 256

// attention: q (ntok, nhead, hd); out (ntok, nhead, hd). Query t sits at
// position pos[t] of slot slot[t] and sees that slot's keys 0..pos[t]:
// kc, vc are the layer's caches (ctx, nkv, hd) of slot 0, slotStride the
// floats from one slot's cache to the next. So rows of several sequences
// (decode rows, prompt chunks) run in one launch, their keys and values
// already written. grid = (nhead, ntok), block = 32*ATT_WARPS threads.
// Each warp walks every ATT_WARPS-th key with an online softmax (running
// max m, normaliser l, weighted sum acc); the warps merge at the end.
KERNEL attention(const float* q, const float* kc, const float* vc, float* out,
                 int nhead, int nkv, int hd, const int* pos, const int* slot, i64 slotStride, float scale) {
    __shared__ float sm[ATT_WARPS], sl[ATT_WARPS];
    __shared__ float sacc[ATT_WARPS][ATT_MAXD * 32];
    int h = ctaid(), t = ctaidy();
    int lane = tid() & 31, w = tid() >> 5;
    int kvh = h / (nhead / nkv);
    int kvw = nkv * hd;
    i64 so = (i64)slot[t] * slotStride;
    kc += so;
    vc += so;
    const float* qr = q + ((i64)t * nhead + h) * hd;
    float qv[ATT_MAXD], acc[ATT_MAXD];
#pragma unroll
    for (int j = 0; j < ATT_MAXD; j++) {
        int d = lane + 32 * j;
        qv[j] = d < hd ? qr[d] * scale : 0.0f;
        acc[j] = 0.0f;
    }
    float m = -__builtin_inff(), l = 0.0f;
    int nkeys = pos[t] + 1;
    for (int k = w; k < nkeys; k += ATT_WARPS) {
        const float* kr = kc + (i64)k * kvw + kvh * hd;
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < ATT_MAXD; j++) {
            int d = lane + 32 * j;
            if (d < hd) s += qv[j] * kr[d];
        }
        s = warp_sum(s);
        float mn = s > m ? s : m;
        float corr = fexp(m - mn);
        float p = fexp(s - mn);
        l = l * corr + p;
        const float* vr = vc + (i64)k * kvw + kvh * hd;
#pragma unroll
        for (int j = 0; j < ATT_MAXD; j++) {
            int d = lane + 32 * j;
            if (d < hd) acc[j] = acc[j] * corr + p * vr[d];
        }
        m = mn;
    }
    if (lane == 0) {
        sm[w] = m;
        sl[w] = l;
    }
#pragma unroll
    for (int j = 0; j < ATT_MAXD; j++) sacc[w][lane + 32 * j] = acc[j];
    __syncthreads();
    float M = -__builtin_inff();
    for (int i = 0; i < ATT_WARPS; i++) M = sm[i] > M ? sm[i] : M;
    float L = 0.0f;
    for (int i = 0; i < ATT_WARPS; i++) L += sl[i] * fexp(sm[i] - M);
    float* orow = out + ((i64)t * nhead + h) * hd;
    for (int d = tid(); d < hd; d += ntid()) {
        float v = 0.0f;
        for (int i = 0; i < ATT_WARPS; i++) v += sacc[i][d] * fexp(sm[i] - M);
        orow[d] = v / L;
    }
}
