// sample.cu: softmax and argmax over logits rows, for sampling on the
// device.
#include "common.cuh"

// softmax replaces each row of x (one block per row of n floats) by
// softmax(x / temp).
KERNEL softmax(float* x, int n, float temp) {
    __shared__ float sh[32];
    float* r = x + (i64)ctaid() * n;
    float inv = 1.0f / temp;
    float m = -__builtin_inff();
    for (int i = tid(); i < n; i += ntid()) {
        float v = r[i] * inv;
        m = v > m ? v : m;
    }
    m = block_max(m, sh);
    float s = 0.0f;
    for (int i = tid(); i < n; i += ntid()) {
        float e = fexp(r[i] * inv - m);
        r[i] = e;
        s += e;
    }
    s = block_sum(s, sh);
    float is = 1.0f / s;
    for (int i = tid(); i < n; i += ntid()) r[i] *= is;
}

// argmax writes the index of each row's largest value (the lowest index
// on ties) to out. One block per row of n floats; blockDim <= 1024.
KERNEL argmax(const float* x, int n, int* out) {
    __shared__ float sv[32];
    __shared__ int si[32];
    const float* r = x + (i64)ctaid() * n;
    float bv = -__builtin_inff();
    int bi = 0x7fffffff;
    for (int i = tid(); i < n; i += ntid()) {
        if (r[i] > bv) {
            bv = r[i];
            bi = i;
        }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float v2 = __nvvm_shfl_sync_bfly_f32(0xffffffffu, bv, o, 31);
        int i2 = __nvvm_shfl_sync_bfly_i32(0xffffffffu, bi, o, 31);
        if (v2 > bv || (v2 == bv && i2 < bi)) {
            bv = v2;
            bi = i2;
        }
    }
    int lane = tid() & 31, w = tid() >> 5, nw = ntid() >> 5;
    if (lane == 0) {
        sv[w] = bv;
        si[w] = bi;
    }
    __syncthreads();
    if (tid() == 0) {
        for (int i = 1; i < nw; i++) {
            if (sv[i] > bv || (sv[i] == bv && si[i] < bi)) {
                bv = sv[i];
                bi = si[i];
            }
        }
        out[ctaid()] = bi < n ? bi : 0;
    }
}
