// quant.cu: matrix-vector products and dequantization straight from the
// GGUF block formats.
//
// Quantized rows are read in groups of 32 weights. Each format provides
// dq(row, g, o): the 32 values of group g of a row (row points at the
// row's first block). Float formats provide get(row, i) per element and
// allow any row length.
#include "common.cuh"

struct Q4_0 { // 18 bytes: f16 d, 16 bytes of nibbles
    DEV void dq(const u8* row, int g, float* o) {
        const u8* b = row + 18 * g;
        float d = h2f(ld16(b));
#pragma unroll
        for (int l = 0; l < 16; l++) {
            int q = b[2 + l];
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
#pragma unroll
        for (int l = 0; l < 32; l++) o[l] = d * (float)(i8)b[2 + l];
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
        const u8* qs = b + 16 + 32 * (s >> 1);
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
        const u8* qh = b + 16;
        const u8* qs = b + 48 + 32 * (s >> 1);
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
        const u8* ql = b + 64 * half + 32 * (k & 1);
        const u8* qh = b + 128 + 32 * half;
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
// One warp per row; grid = (ceil(nrows / warps per block), ntok). acc != 0
// adds to y (residual connections) instead of overwriting it.
template <typename T>
DEV void mmv_q(const u8* W, const float* x, float* y, int ncols, int nrows, i64 rowbytes, int acc) {
    int lane = tid() & 31;
    int r = ctaid() * (ntid() >> 5) + (tid() >> 5);
    if (r >= nrows) return;
    int t = ctaidy();
    const u8* wr = W + (i64)r * rowbytes;
    const float* xr = x + (i64)t * ncols;
    float sum = 0.0f;
    int ng = ncols >> 5;
    for (int g = lane; g < ng; g += 32) {
        float w[32];
        T::dq(wr, g, w);
        const float* xg = xr + g * 32;
#pragma unroll
        for (int l = 0; l < 32; l++) sum += w[l] * xg[l];
    }
    sum = warp_sum(sum);
    if (lane == 0) {
        float* yp = y + (i64)t * nrows + r;
        *yp = acc ? *yp + sum : sum;
    }
}

template <typename T>
DEV void mmv_f(const u8* W, const float* x, float* y, int ncols, int nrows, i64 rowbytes, int acc) {
    int lane = tid() & 31;
    int r = ctaid() * (ntid() >> 5) + (tid() >> 5);
    if (r >= nrows) return;
    int t = ctaidy();
    const u8* wr = W + (i64)r * rowbytes;
    const float* xr = x + (i64)t * ncols;
    float sum = 0.0f;
    for (int i = lane; i < ncols; i += 32) sum += T::get(wr, i) * xr[i];
    sum = warp_sum(sum);
    if (lane == 0) {
        float* yp = y + (i64)t * nrows + r;
        *yp = acc ? *yp + sum : sum;
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
    KERNEL mmv_##name(const u8* W, const float* x, float* y, int ncols, int nrows, i64 rowbytes, int acc) {    \
        mmv_q<T>(W, x, y, ncols, nrows, rowbytes, acc);                                                        \
    }                                                                                                          \
    KERNEL dequant_##name(const u8* W, const int* ids, float* dst, int ncols, int nrows, i64 rowbytes, int r0) { \
        dequant_q<T>(W, ids, dst, ncols, nrows, rowbytes, r0);                                                 \
    }

#define FLOAT_KERNELS(name, T)                                                                                 \
    KERNEL mmv_##name(const u8* W, const float* x, float* y, int ncols, int nrows, i64 rowbytes, int acc) {    \
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
