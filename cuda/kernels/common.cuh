// common.cuh: the few CUDA declarations the kernels need, written against
// clang's NVPTX builtins so that no CUDA toolkit headers are required.
// Every kernel is extern "C" so the PTX entry names are the plain names the
// Go side looks up.
#pragma once

typedef unsigned char u8;
typedef signed char i8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef long long i64;

#ifdef HOST_EMULATION
// Tests compile the kernels for the host and run them on an emulator of
// CUDA's threads, which provides these primitives.
#include "hostemu.h"
#else
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define DEV static __device__ __attribute__((always_inline)) inline
#define KERNEL extern "C" __global__ void

DEV int tid() { return __nvvm_read_ptx_sreg_tid_x(); }
DEV int ntid() { return __nvvm_read_ptx_sreg_ntid_x(); }
DEV int ctaid() { return __nvvm_read_ptx_sreg_ctaid_x(); }
DEV int ctaidy() { return __nvvm_read_ptx_sreg_ctaid_y(); }
DEV int nctaid() { return __nvvm_read_ptx_sreg_nctaid_x(); }

DEV float h2f(u16 h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
#endif

// gid is the global thread index along x.
DEV i64 gid() { return (i64)ctaid() * ntid() + tid(); }

DEV float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __nvvm_shfl_sync_bfly_f32(0xffffffffu, v, o, 31);
    return v;
}

DEV float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float w = __nvvm_shfl_sync_bfly_f32(0xffffffffu, v, o, 31);
        v = v > w ? v : w;
    }
    return v;
}

// block_sum reduces v over the block (blockDim a multiple of 32, at most
// 1024); every thread gets the total. sh must hold 32 floats.
DEV float block_sum(float v, float* sh) {
    int lane = tid() & 31, w = tid() >> 5, nw = ntid() >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0f;
    return warp_sum(v);
}

DEV float block_max(float v, float* sh) {
    int lane = tid() & 31, w = tid() >> 5, nw = ntid() >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : -__builtin_inff();
    return warp_max(v);
}


DEV float bf2f(u16 h) { return __builtin_bit_cast(float, (u32)h << 16); }

DEV u16 ld16(const u8* p) { return *(const u16*)p; }

// fexp is e^x through ex2.approx (relative error about 2^-22).
DEV float fexp(float x) { return __nvvm_ex2_approx_f(x * 1.4426950408889634f); }
