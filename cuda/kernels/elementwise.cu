// elementwise.cu: SwiGLU, residual and bias adds, the KV-cache write.
#include "common.cuh"

// swiglu: out[i] = silu(gate[i]) * up[i]. out may equal gate.
KERNEL swiglu(const float* gate, const float* up, float* out, i64 n) {
    i64 i = gid();
    if (i >= n) return;
    float g = gate[i];
    out[i] = g / (1.0f + fexp(-g)) * up[i];
}

// add_bias: x[r][i] += b[i] for rows of width floats (n = rows*width).
KERNEL add_bias(float* x, const float* b, i64 n, int width) {
    i64 i = gid();
    if (i >= n) return;
    x[i] += b[i % width];
}

// add: x[i] += y[i].
KERNEL add(float* x, const float* y, i64 n) {
    i64 i = gid();
    if (i >= n) return;
    x[i] += y[i];
}

// kv_write copies ntok rows of width floats from k and v (ntok, width)
// into their caches: row t goes to position pos[t] of slot slot[t], at
// kc + slot[t]*slotStride + pos[t]*width (kc, vc: the layer's cache of
// slot 0; slotStride: floats from one slot's cache to the next).
KERNEL kv_write(const float* k, const float* v, float* kc, float* vc, int ntok, int width,
                const int* pos, const int* slot, i64 slotStride) {
    i64 i = gid();
    if (i >= (i64)ntok * width) return;
    int t = (int)(i / width);
    i64 d = (i64)slot[t] * slotStride + (i64)pos[t] * width + i % width;
    kc[d] = k[i];
    vc[d] = v[i];
}
