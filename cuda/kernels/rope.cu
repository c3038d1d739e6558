// rope.cu: rotary position embedding, both pair layouts.
#include "common.cuh"

// rope rotates q and k in place. q: (ntok, nhead, hd); k: (ntok, nkv,
// hd). cs: (positions, rdims/2, 2) holding cos and sin of pos*freq_i,
// computed on the host in float64. Token t sits at position pos[t], read
// from device memory (so that one pass rotates rows of several sequences,
// and a captured graph serves every step).
// neox=0 pairs (2i, 2i+1), as GGUF llama; neox=1 pairs (i, i+rdims/2), the
// rotate-half layout. One thread per (token, head, pair), q's heads first.
KERNEL rope(float* q, float* k, const float* cs, int ntok, int nhead, int nkv, int hd, int rdims, const int* pos, int neox) {
    int half = rdims / 2;
    i64 idx = gid();
    i64 nq = (i64)ntok * nhead * half;
    float* x = q;
    int nh = nhead;
    if (idx >= nq) {
        idx -= nq;
        x = k;
        nh = nkv;
        if (idx >= (i64)ntok * nkv * half) return;
    }
    int i = (int)(idx % half);
    i64 th = idx / half; // token*nh + head
    int t = (int)(th / nh);
    float* v = x + th * hd;
    const float* c = cs + ((i64)pos[t] * half + i) * 2;
    float co = c[0], si = c[1];
    int a = neox ? i : 2 * i;
    int b = neox ? i + half : 2 * i + 1;
    float x0 = v[a], x1 = v[b];
    v[a] = x0 * co - x1 * si;
    v[b] = x0 * si + x1 * co;
}
