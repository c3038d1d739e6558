// quant.cu: matrix-vector products and dequantization straight from the
// GGUF block formats.
//
// Quantized rows are read in groups of 32 weights. Each format provides
// dq(row, g, o): the 32 values of group g of a row (row points at the
// row's first block). Float formats provide get(row, i) per element and
// allow any row length.
#include "common.cuh"

// Wide loads. Every device row starts on a 256-byte boundary plus a whole
// number of rows, so these alignments hold: blocks of 18, 20, 22, 24, 34
// and 210 bytes give 2-byte alignment (ld16); Q4_K's 144 and Q5_K's 176
// give 16-byte alignment (ld16x).
struct __attribute__((aligned(16))) u32x4 {
    u32 a, b, c, d;
};

// ld16x loads 16 bytes from a 16-byte aligned address into o.
DEV void ld16x(const u8* p, u8* o) {
    u32x4 v = *(const u32x4*)p;
    u32 w[4] = {v.a, v.b, v.c, v.d};
#pragma unroll
    for (int i = 0; i < 16; i++) o[i] = (u8)(w[i >> 2] >> (8 * (i & 3)));
}

// ld2x loads n (even) bytes from a 2-byte aligned address into o.
template <int n>
DEV void ld2x(const u8* p, u8* o) {
#pragma unroll
    for (int i = 0; i < n / 2; i++) {
        u16 v = ld16(p + 2 * i);
        o[2 * i] = (u8)v;
        o[2 * i + 1] = (u8)(v >> 8);
    }
}

struct Q4_0 { // 18 bytes: f16 d, 16 bytes of nibbles
    DEV void dq(const u8* row, int g, float* o) {
        const u8* b = row + 18 * g;
        float d = h2f(ld16(b));
        u8 qs[16];
        ld2x<16>(b + 2, qs);
#pragma unroll
        for (int l = 0; l < 16; l++) {
            int q = qs[l];
            o[l] = d * (float)((q & 15) - 8);
            o[l + 16] = d * (float)((q >> 4) - 8);
        }
    }
};

struct Q4_1 { // 20 bytes: f16 d, f16 m, 16 bytes of nibbles
    DEV void dq(const u8* row, int g, float* o) {
        const u8* b = row + 20 * g;
        float d = h2f(ld16(b)), m = h2f(ld16(b + 2));
#pragma unroll
        for (int l = 0; l < 16; l++) {
            int q = b[4 + l];
            o[l] = d * (float)(q & 15) + m;
            o[l + 16] = d * (float)(q >> 4) + m;
        }
    }
};

DEV u32 ld32b(const u8* p) { return (u32)p[0] | ((u32)p[1] << 8) | ((u32)p[2] << 16) | ((u32)p[3] << 24); }

struct Q5_0 { // 22 bytes: f16 d, 4 bytes of high bits, 16 bytes of nibbles
    DEV void dq(const u8* row, int g, float* o) {
        const u8* b = row + 22 * g;
        float d = h2f(ld16(b));
        u32 qh = ld32b(b + 2);
#pragma unroll
        for (int l = 0; l < 16; l++) {
            int q = b[6 + l];
            int h0 = ((qh >> l) << 4) & 0x10;
            int h1 = (qh >> (l + 12)) & 0x10;
            o[l] = d * (float)(((q & 15) | h0) - 16);
            o[l + 16] = d * (float)(((q >> 4) | h1) - 16);
        }
    }
};

struct Q5_1 { // 24 bytes: f16 d, f16 m, 4 bytes of high bits, 16 bytes of nibbles
    DEV void dq(const u8* row, int g, float* o) {
        const u8* b = row + 24 * g;
        float d = h2f(ld16(b)), m = h2f(ld16(b + 2));
        u32 qh = ld32b(b + 4);
#pragma unroll
        for (int l = 0; l < 16; l++) {
            int q = b[8 + l];
            int h0 = ((qh >> l) << 4) & 0x10;
            int h1 = (qh >> (l + 12)) & 0x10;
            o[l] = d * (float)((q & 15) | h0) + m;
            o[l + 16] = d * (float)((q >> 4) | h1) + m;
        }
    }
};

struct Q8_0 { // 34 bytes: f16 d, 32 int8
    DEV void dq(const u8* row, int g, float* o) {
        const u8* b = row + 34 * g;
        float d = h2f(ld16(b));
        u8 qs[32];
        ld2x<32>(b + 2, qs);
#pragma unroll
        for (int l = 0; l < 32; l++) o[l] = d * (float)(i8)qs[l];
    }
};

// scale_min_k4 unpacks the j-th 6-bit scale and min of a Q4_K/Q5_K block.
DEV void scale_min_k4(int j, const u8* q, int* sc, int* mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// Super-blocks of 256 hold 8 groups of 32.
struct Q4_K { // 144 bytes: f16 d, f16 dmin, 12 bytes of scales, 128 bytes of nibbles
    DEV void dq(const u8* row, int g, float* o) {
        const u8* b = row + 144 * (g >> 3);
        int s = g & 7;
        float d = h2f(ld16(b)), dmin = h2f(ld16(b + 2));
        int sc, mn;
        scale_min_k4(s, b + 4, &sc, &mn);
        float d1 = d * (float)sc, m1 = dmin * (float)mn;
        u8 qs[32];
        ld16x(b + 16 + 32 * (s >> 1), qs);
        ld16x(b + 32 + 32 * (s >> 1), qs + 16);
        int shift = (s & 1) * 4;
#pragma unroll
        for (int l = 0; l < 32; l++) o[l] = d1 * (float)((qs[l] >> shift) & 15) - m1;
    }
};

struct Q5_K { // 176 bytes: f16 d, f16 dmin, 12 bytes of scales, 32 bytes of high bits, 128 bytes of nibbles
    DEV void dq(const u8* row, int g, float* o) {
        const u8* b = row + 176 * (g >> 3);
        int s = g & 7;
        float d = h2f(ld16(b)), dmin = h2f(ld16(b + 2));
        int sc, mn;
        scale_min_k4(s, b + 4, &sc, &mn);
        float d1 = d * (float)sc, m1 = dmin * (float)mn;
        u8 qh[32], qs[32];
        ld16x(b + 16, qh);
        ld16x(b + 32, qh + 16);
        ld16x(b + 48 + 32 * (s >> 1), qs);
        ld16x(b + 64 + 32 * (s >> 1), qs + 16);
        int shift = (s & 1) * 4;
#pragma unroll
        for (int l = 0; l < 32; l++) {
            int q = ((qs[l] >> shift) & 15) | (((qh[l] >> s) & 1) << 4);
            o[l] = d1 * (float)q - m1;
        }
    }
};

struct Q6_K { // 210 bytes: 128 bytes low nibbles, 64 bytes high bits, 16 int8 scales, f16 d
    DEV void dq(const u8* row, int g, float* o) {
        const u8* b = row + 210 * (g >> 3);
        int s = g & 7;
        int half = s >> 2, k = s & 3;
        float d = h2f(ld16(b + 208));
        u8 ql[32], qh[32];
        ld2x<32>(b + 64 * half + 32 * (k & 1), ql);
        ld2x<32>(b + 128 + 32 * half, qh);
        const i8* sc = (const i8*)(b + 192) + 8 * half + 2 * k;
        int lshift = (k >> 1) * 4, hshift = 2 * k;
        float d0 = d * (float)sc[0], d1 = d * (float)sc[1];
#pragma unroll
        for (int l = 0; l < 32; l++) {
            int q = (((ql[l] >> lshift) & 15) | (((qh[l] >> hshift) & 3) << 4)) - 32;
            o[l] = (l < 16 ? d0 : d1) * (float)q;
        }
    }
};

struct F32 {
    DEV float get(const u8* row, i64 i) { return ((const float*)row)[i]; }
};
struct F16 {
    DEV float get(const u8* row, i64 i) { return h2f(((const u16*)row)[i]); }
};
struct BF16 {
    DEV float get(const u8* row, i64 i) { return bf2f(((const u16*)row)[i]); }
};

// mmv: y[t][r] (+)= W[r] . x[t] for a quantized W of nrows rows of ncols
// (ncols % 32 == 0), rowbytes bytes each; x (ntok, ncols); y (ntok, nrows).
// Each warp computes MMV_ROWS rows, so that every group of x it loads
// serves them all; grid = (ceil(nrows / (MMV_ROWS * warps per block)),
// ntok). acc != 0 adds to y (residual connections) instead of overwriting.
#define MMV_ROWS 2

struct __attribute__((aligned(16))) f32x4 {
    float a, b, c, d;
};

DEV void mmv_store(float* y, int t, int nrows, int r0, float* sum, int acc) {
#pragma unroll
    for (int k = 0; k < MMV_ROWS; k++) {
        float s = warp_sum(sum[k]);
        if ((tid() & 31) == 0 && r0 + k < nrows) {
            float* yp = y + (i64)t * nrows + r0 + k;
            *yp = acc ? *yp + s : s;
        }
    }
}

template <typename T>
DEV void mmv_q(const u8* W, const float* x, float* y, int ncols, int nrows, i64 rowbytes, int acc) {
    int lane = tid() & 31;
    int r0 = (ctaid() * (ntid() >> 5) + (tid() >> 5)) * MMV_ROWS;
    if (r0 >= nrows) return;
    int t = ctaidy();
    const float* xr = x + (i64)t * ncols;
    float sum[MMV_ROWS];
#pragma unroll
    for (int k = 0; k < MMV_ROWS; k++) sum[k] = 0.0f;
    int ng = ncols >> 5;
    for (int g = lane; g < ng; g += 32) {
        float xv[32];
        const f32x4* xg = (const f32x4*)(xr + g * 32);
#pragma unroll
        for (int i = 0; i < 8; i++) {
            f32x4 v = xg[i];
            xv[4 * i] = v.a;
            xv[4 * i + 1] = v.b;
            xv[4 * i + 2] = v.c;
            xv[4 * i + 3] = v.d;
        }
#pragma unroll
        for (int k = 0; k < MMV_ROWS; k++) {
            if (r0 + k < nrows) {
                float w[32];
                T::dq(W + (i64)(r0 + k) * rowbytes, g, w);
#pragma unroll
                for (int l = 0; l < 32; l++) sum[k] += w[l] * xv[l];
            }
        }
    }
    mmv_store(y, t, nrows, r0, sum, acc);
}

template <typename T>
DEV void mmv_f(const u8* W, const float* x, float* y, int ncols, int nrows, i64 rowbytes, int acc) {
    int lane = tid() & 31;
    int r0 = (ctaid() * (ntid() >> 5) + (tid() >> 5)) * MMV_ROWS;
    if (r0 >= nrows) return;
    int t = ctaidy();
    const float* xr = x + (i64)t * ncols;
    float sum[MMV_ROWS];
#pragma unroll
    for (int k = 0; k < MMV_ROWS; k++) sum[k] = 0.0f;
    for (int i = lane; i < ncols; i += 32) {
        float xi = xr[i];
#pragma unroll
        for (int k = 0; k < MMV_ROWS; k++) {
            if (r0 + k < nrows) sum[k] += T::get(W + (i64)(r0 + k) * rowbytes, i) * xi;
        }
    }
    mmv_store(y, t, nrows, r0, sum, acc);
}

// mmv_glu: out[t][r] = silu(G[r] . x[t]) * (U[r] . x[t]), the FFN's gate
// and up projections and SwiGLU in one pass over x (same geometry as mmv).
template <typename T>
DEV void mmv_glu_q(const u8* G, const u8* U, const float* x, float* out, int ncols, int nrows, i64 rowbytes) {
    int lane = tid() & 31;
    int r0 = (ctaid() * (ntid() >> 5) + (tid() >> 5)) * MMV_ROWS;
    if (r0 >= nrows) return;
    int t = ctaidy();
    const float* xr = x + (i64)t * ncols;
    float sg[MMV_ROWS], su[MMV_ROWS];
#pragma unroll
    for (int k = 0; k < MMV_ROWS; k++) sg[k] = su[k] = 0.0f;
    int ng = ncols >> 5;
    for (int g = lane; g < ng; g += 32) {
        float xv[32];
        const f32x4* xg = (const f32x4*)(xr + g * 32);
#pragma unroll
        for (int i = 0; i < 8; i++) {
            f32x4 v = xg[i];
            xv[4 * i] = v.a;
            xv[4 * i + 1] = v.b;
            xv[4 * i + 2] = v.c;
            xv[4 * i + 3] = v.d;
        }
#pragma unroll
        for (int k = 0; k < MMV_ROWS; k++) {
            if (r0 + k < nrows) {
                float w[32];
                T::dq(G + (i64)(r0 + k) * rowbytes, g, w);
#pragma unroll
                for (int l = 0; l < 32; l++) sg[k] += w[l] * xv[l];
                T::dq(U + (i64)(r0 + k) * rowbytes, g, w);
#pragma unroll
                for (int l = 0; l < 32; l++) su[k] += w[l] * xv[l];
            }
        }
    }
#pragma unroll
    for (int k = 0; k < MMV_ROWS; k++) {
        float gs = warp_sum(sg[k]), us = warp_sum(su[k]);
        if (lane == 0 && r0 + k < nrows) out[(i64)t * nrows + r0 + k] = gs / (1.0f + fexp(-gs)) * us;
    }
}

template <typename T>
DEV void mmv_glu_f(const u8* G, const u8* U, const float* x, float* out, int ncols, int nrows, i64 rowbytes) {
    int lane = tid() & 31;
    int r0 = (ctaid() * (ntid() >> 5) + (tid() >> 5)) * MMV_ROWS;
    if (r0 >= nrows) return;
    int t = ctaidy();
    const float* xr = x + (i64)t * ncols;
    float sg[MMV_ROWS], su[MMV_ROWS];
#pragma unroll
    for (int k = 0; k < MMV_ROWS; k++) sg[k] = su[k] = 0.0f;
    for (int i = lane; i < ncols; i += 32) {
        float xi = xr[i];
#pragma unroll
        for (int k = 0; k < MMV_ROWS; k++) {
            if (r0 + k < nrows) {
                sg[k] += T::get(G + (i64)(r0 + k) * rowbytes, i) * xi;
                su[k] += T::get(U + (i64)(r0 + k) * rowbytes, i) * xi;
            }
        }
    }
#pragma unroll
    for (int k = 0; k < MMV_ROWS; k++) {
        float gs = warp_sum(sg[k]), us = warp_sum(su[k]);
        if (lane == 0 && r0 + k < nrows) out[(i64)t * nrows + r0 + k] = gs / (1.0f + fexp(-gs)) * us;
    }
}

// dequant writes rows of W as float32 into dst (nrows, ncols). Source row
// i is ids[i] when ids is not null (the embedding gather: ids are token
// ids), else row0+i (tiles of a weight for the prefill GEMM). Quantized:
// one thread per group of 32; float formats: one thread per element.
template <typename T>
DEV void dequant_q(const u8* W, const int* ids, float* dst, int ncols, int nrows, i64 rowbytes, int row0) {
    int ng = ncols >> 5;
    i64 idx = gid();
    if (idx >= (i64)nrows * ng) return;
    int i = (int)(idx / ng), g = (int)(idx % ng);
    int src = ids ? ids[i] : row0 + i;
    float w[32];
    T::dq(W + (i64)src * rowbytes, g, w);
    float* o = dst + (i64)i * ncols + g * 32;
#pragma unroll
    for (int l = 0; l < 32; l++) o[l] = w[l];
}

template <typename T>
DEV void dequant_f(const u8* W, const int* ids, float* dst, int ncols, int nrows, i64 rowbytes, int row0) {
    i64 idx = gid();
    if (idx >= (i64)nrows * ncols) return;
    int i = (int)(idx / ncols), c = (int)(idx % ncols);
    int src = ids ? ids[i] : row0 + i;
    dst[idx] = T::get(W + (i64)src * rowbytes, c);
}

#define QUANT_KERNELS(name, T)                                                                                 \
    KERNEL mmv_glu_##name(const u8* __restrict__ G, const u8* __restrict__ U, const float* __restrict__ x,               \
                          float* __restrict__ out, int ncols, int nrows, i64 rowbytes) {                       \
        mmv_glu_q<T>(G, U, x, out, ncols, nrows, rowbytes);                                                    \
    }                                                                                                          \
    KERNEL mmv_##name(const u8* __restrict__ W, const float* __restrict__ x, float* __restrict__ y, int ncols,         \
                      int nrows, i64 rowbytes, int acc) {                                                      \
        mmv_q<T>(W, x, y, ncols, nrows, rowbytes, acc);                                                        \
    }                                                                                                          \
    KERNEL dequant_##name(const u8* W, const int* ids, float* dst, int ncols, int nrows, i64 rowbytes, int r0) { \
        dequant_q<T>(W, ids, dst, ncols, nrows, rowbytes, r0);                                                 \
    }

#define FLOAT_KERNELS(name, T)                                                                                 \
    KERNEL mmv_glu_##name(const u8* __restrict__ G, const u8* __restrict__ U, const float* __restrict__ x,               \
                          float* __restrict__ out, int ncols, int nrows, i64 rowbytes) {                       \
        mmv_glu_f<T>(G, U, x, out, ncols, nrows, rowbytes);                                                    \
    }                                                                                                          \
    KERNEL mmv_##name(const u8* __restrict__ W, const float* __restrict__ x, float* __restrict__ y, int ncols,         \
                      int nrows, i64 rowbytes, int acc) {                                                      \
        mmv_f<T>(W, x, y, ncols, nrows, rowbytes, acc);                                                        \
    }                                                                                                          \
    KERNEL dequant_##name(const u8* W, const int* ids, float* dst, int ncols, int nrows, i64 rowbytes, int r0) { \
        dequant_f<T>(W, ids, dst, ncols, nrows, rowbytes, r0);                                                 \
    }

QUANT_KERNELS(q4_0, Q4_0)
QUANT_KERNELS(q4_1, Q4_1)
QUANT_KERNELS(q5_0, Q5_0)
QUANT_KERNELS(q5_1, Q5_1)
QUANT_KERNELS(q8_0, Q8_0)
QUANT_KERNELS(q4_k, Q4_K)
QUANT_KERNELS(q5_k, Q5_K)
QUANT_KERNELS(q6_k, Q6_K)
FLOAT_KERNELS(f32, F32)
FLOAT_KERNELS(f16, F16)
FLOAT_KERNELS(bf16, BF16)
