// main.cpp: runs one kernel launch on the host emulator.
//
//   hostemu MEMORY LAUNCH
//
// MEMORY is the emulated device memory, read and written back in place;
// device pointers are addresses from 0x100000000 into it. LAUNCH is one
// line: name gx gy threads, then one tag:value per argument (p pointer,
// i int32, l int64, f float32 bits, u uint32); each must match the width
// of the kernel's parameter, as the driver's parameter buffer requires.
#include "attention.cu"
#include "elementwise.cu"
#include "norm.cu"
#include "quant.cu"
#include "rope.cu"
#include "sample.cu"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <utility>

static const uint64_t kBase = 0x100000000ull;

struct Arg {
    char tag;
    uint64_t v;
};

static u8* g_mem;

[[noreturn]] static void fail(const char* what) {
    fprintf(stderr, "hostemu: %s\n", what);
    std::_Exit(3);
}

template <class T>
static T conv(const Arg& a) {
    if constexpr (std::is_pointer_v<T>) {
        if (a.tag != 'p') fail("argument is not a pointer");
        return a.v ? (T)(g_mem + (a.v - kBase)) : nullptr;
    } else if constexpr (std::is_same_v<T, float>) {
        if (a.tag != 'f') fail("float argument not passed as float32");
        u32 b = (u32)a.v;
        float f;
        memcpy(&f, &b, 4);
        return f;
    } else if constexpr (std::is_same_v<T, i64>) {
        // The widths must match: the driver lays out the parameter buffer
        // from the kernel's own signature.
        if (a.tag != 'l') fail("64-bit integer argument not passed as int64");
        return (i64)a.v;
    } else {
        static_assert(sizeof(T) == 4, "32-bit integer parameter");
        if (a.tag != 'i' && a.tag != 'u') fail("32-bit integer argument not passed as int/int32/uint32");
        return (T)(int32_t)(uint32_t)a.v;
    }
}

template <class... Ts, size_t... I>
static void call(void (*f)(Ts...), const std::vector<Arg>& a, std::index_sequence<I...>) {
    f(conv<Ts>(a[I])...);
}

template <class... Ts>
static std::function<void(const std::vector<Arg>&)> bind(void (*f)(Ts...)) {
    return [f](const std::vector<Arg>& a) {
        if (a.size() != sizeof...(Ts)) fail("wrong argument count");
        call(f, a, std::index_sequence_for<Ts...>{});
    };
}

#define K(name) {#name, bind(name)}
#define Q(s) K(mmv_##s), K(mmv_glu_##s), K(dequant_##s)

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: hostemu MEMORY LAUNCH\n");
        return 2;
    }
    std::map<std::string, std::function<void(const std::vector<Arg>&)>> kernels = {
        K(rmsnorm), K(rope), K(swiglu), K(add_bias), K(add), K(kv_write), K(attention), K(softmax), K(argmax),
        Q(q4_0), Q(q4_1), Q(q5_0), Q(q5_1), Q(q8_0), Q(q4_k), Q(q5_k), Q(q6_k), Q(f32), Q(f16), Q(bf16),
    };
    std::ifstream mf(argv[1], std::ios::binary);
    std::vector<u8> mem((std::istreambuf_iterator<char>(mf)), std::istreambuf_iterator<char>());
    mf.close();
    g_mem = mem.data();
    std::ifstream lf(argv[2]);
    std::string name;
    int gx, gy, nt;
    lf >> name >> gx >> gy >> nt;
    std::vector<Arg> args;
    std::string tok;
    while (lf >> tok) {
        Arg a{tok[0], std::stoull(tok.substr(2))};
        args.push_back(a);
    }
    auto it = kernels.find(name);
    if (it == kernels.end()) {
        fprintf(stderr, "no kernel %s\n", name.c_str());
        return 1;
    }
    auto fn = it->second;
    emu_run(gx, gy, nt, [&] { fn(args); });
    std::ofstream of(argv[1], std::ios::binary);
    of.write((const char*)mem.data(), mem.size());
    return of.good() ? 0 : 1;
}
