// hostemu.h: the platform primitives of common.cuh for the host, so that
// tests can run the kernels' own source on the CPU. Each CUDA thread of a
// block is an OS thread; __syncthreads is a barrier over the block and a
// warp shuffle exchanges values through memory between two barriers over
// the warp. Blocks run one after another.
#pragma once
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __shared__ static
#define DEV static inline
#define KERNEL extern "C" void

struct EmuThread {
    int tid, ntid, ctaid, ctaidy, nctaid;
};
inline thread_local EmuThread emu;
inline std::barrier<>* emu_block;
inline std::barrier<>* emu_warps[32];
inline float emu_xf[32][32];
inline int emu_xi[32][32];

DEV int tid() { return emu.tid; }
DEV int ntid() { return emu.ntid; }
DEV int ctaid() { return emu.ctaid; }
DEV int ctaidy() { return emu.ctaidy; }
DEV int nctaid() { return emu.nctaid; }

inline void __syncthreads() { emu_block->arrive_and_wait(); }

inline float __nvvm_shfl_sync_bfly_f32(unsigned, float v, int o, int) {
    int w = emu.tid >> 5, l = emu.tid & 31;
    emu_xf[w][l] = v;
    emu_warps[w]->arrive_and_wait();
    float r = emu_xf[w][l ^ o];
    emu_warps[w]->arrive_and_wait();
    return r;
}

inline int __nvvm_shfl_sync_bfly_i32(unsigned, int v, int o, int) {
    int w = emu.tid >> 5, l = emu.tid & 31;
    emu_xi[w][l] = v;
    emu_warps[w]->arrive_and_wait();
    int r = emu_xi[w][l ^ o];
    emu_warps[w]->arrive_and_wait();
    return r;
}

inline float __nvvm_ex2_approx_f(float x) { return exp2f(x); }

DEV float h2f(u16 h) {
    u32 s = (h >> 15) & 1, e = (h >> 10) & 31, m = h & 1023;
    float v;
    if (e == 0) v = ldexpf((float)m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexpf((float)(m | 1024), (int)e - 25);
    return s ? -v : v;
}

// emu_run runs f as a grid of gx × gy blocks of nt threads (nt a multiple
// of 32, at most 1024). The nt OS threads are made once and walk the
// blocks in order, meeting at a barrier between blocks.
template <class F>
void emu_run(int gx, int gy, int nt, F f) {
    std::barrier<> block(nt);
    std::vector<std::unique_ptr<std::barrier<>>> warps;
    for (int w = 0; w < nt / 32; w++) {
        warps.emplace_back(new std::barrier<>(32));
        emu_warps[w] = warps.back().get();
    }
    emu_block = &block;
    std::vector<std::thread> ts;
    for (int t = 0; t < nt; t++) {
        ts.emplace_back([=, &block] {
            for (int by = 0; by < gy; by++) {
                for (int bx = 0; bx < gx; bx++) {
                    emu = EmuThread{t, nt, bx, by, gx};
                    f();
                    block.arrive_and_wait();
                }
            }
        });
    }
    for (auto& t : ts) t.join();
}
