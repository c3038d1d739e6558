// hostemu.h: the platform primitives of common.cuh for the host, so that
// tests can run the kernels' own source on the CPU. Each CUDA thread of a
// block is a fiber (ucontext) on one OS thread, scheduled round-robin:
// __syncthreads is a barrier over the block, and a warp shuffle exchanges
// values through memory between two barriers over the warp; a fiber
// waiting at a barrier yields to the next. Blocks run one after another.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <ucontext.h>
#include <vector>

#define __global__
#define __device__
#define __shared__ static
#define DEV static inline
#define KERNEL extern "C" void

struct EmuThread {
    int tid, ntid, ctaid, ctaidy, nctaid;
    ucontext_t ctx;
    bool done;
};

struct EmuBarrier {
    int expected = 0, arrived = 0, gen = 0;
};

inline EmuThread* emu_cur;
inline ucontext_t emu_sched;
inline EmuBarrier emu_block;
inline EmuBarrier emu_warps[32];
inline float emu_xf[32][32];
inline int emu_xi[32][32];

inline void emu_yield() { swapcontext(&emu_cur->ctx, &emu_sched); }

inline void emu_wait(EmuBarrier& b) {
    int g = b.gen;
    if (++b.arrived == b.expected) {
        b.arrived = 0;
        b.gen++;
        return;
    }
    while (b.gen == g) emu_yield();
}

DEV int tid() { return emu_cur->tid; }
DEV int ntid() { return emu_cur->ntid; }
DEV int ctaid() { return emu_cur->ctaid; }
DEV int ctaidy() { return emu_cur->ctaidy; }
DEV int nctaid() { return emu_cur->nctaid; }

inline void __syncthreads() { emu_wait(emu_block); }

inline float __nvvm_shfl_sync_bfly_f32(unsigned, float v, int o, int) {
    int w = emu_cur->tid >> 5, l = emu_cur->tid & 31;
    emu_xf[w][l] = v;
    emu_wait(emu_warps[w]);
    float r = emu_xf[w][l ^ o];
    emu_wait(emu_warps[w]);
    return r;
}

inline int __nvvm_shfl_sync_bfly_i32(unsigned, int v, int o, int) {
    int w = emu_cur->tid >> 5, l = emu_cur->tid & 31;
    emu_xi[w][l] = v;
    emu_wait(emu_warps[w]);
    int r = emu_xi[w][l ^ o];
    emu_wait(emu_warps[w]);
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

inline std::function<void()> emu_body;

inline void emu_entry() {
    emu_body();
    emu_cur->done = true;
    swapcontext(&emu_cur->ctx, &emu_sched);
}

// emu_run runs f as a grid of gx × gy blocks of nt threads (nt a multiple
// of 32, at most 1024).
template <class F>
void emu_run(int gx, int gy, int nt, F f) {
    const size_t stack = 64 << 10;
    std::vector<EmuThread> ts(nt);
    std::vector<char> stacks((size_t)nt * stack);
    emu_body = f;
    for (int by = 0; by < gy; by++) {
        for (int bx = 0; bx < gx; bx++) {
            emu_block = EmuBarrier{nt};
            for (int w = 0; w < nt / 32; w++) emu_warps[w] = EmuBarrier{32};
            for (int t = 0; t < nt; t++) {
                ts[t].tid = t;
                ts[t].ntid = nt;
                ts[t].ctaid = bx;
                ts[t].ctaidy = by;
                ts[t].nctaid = gx;
                ts[t].done = false;
                getcontext(&ts[t].ctx);
                ts[t].ctx.uc_stack.ss_sp = &stacks[(size_t)t * stack];
                ts[t].ctx.uc_stack.ss_size = stack;
                ts[t].ctx.uc_link = nullptr;
                makecontext(&ts[t].ctx, emu_entry, 0);
            }
            for (int live = nt; live > 0;) {
                live = 0;
                for (auto& t : ts) {
                    if (t.done) continue;
                    emu_cur = &t;
                    swapcontext(&emu_sched, &t.ctx);
                    if (!t.done) live++;
                }
            }
        }
    }
}
