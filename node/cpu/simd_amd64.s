//go:build !purego

#include "textflag.h"

// EXPCONSTS loads the constants EXP8 uses (expc) into Y4-Y14.
#define EXPCONSTS \
	VBROADCASTSS expc<>+0(SB), Y13; \
	VBROADCASTSS expc<>+4(SB), Y14; \
	VBROADCASTSS expc<>+12(SB), Y12; \
	VBROADCASTSS expc<>+16(SB), Y11; \
	VBROADCASTSS expc<>+20(SB), Y10; \
	VBROADCASTSS expc<>+24(SB), Y9; \
	VBROADCASTSS expc<>+28(SB), Y8; \
	VBROADCASTSS expc<>+32(SB), Y7; \
	VBROADCASTSS expc<>+36(SB), Y6; \
	VBROADCASTSS expc<>+40(SB), Y5; \
	VBROADCASTSS expc<>+44(SB), Y4

// EXP8 sets Y3 = exp(Y0) (eight lanes; Y0-Y2 are clobbered), with the
// constants expAVX2 and siluMulAVX2 load: Y0 clamped to [-87.3, 88.3]
// (Y5, Y4), = k·ln2 + r with |r| <= ln2/2 (Y13 = 1/ln2, Y14 and
// expln2lo ln2 in two parts), exp(r) by a degree-7 polynomial (Y12-Y7,
// Y6 = 1), 2^k by exponent bits.
#define EXP8 \
	VMINPS Y5, Y0, Y0; \
	VMAXPS Y4, Y0, Y0; \
	VMULPS Y13, Y0, Y1; \
	VROUNDPS $0, Y1, Y1; \
	VMOVAPS Y0, Y2; \
	VFNMADD231PS Y14, Y1, Y2; \
	VFNMADD231PS expln2lo<>(SB), Y1, Y2; \
	VMOVAPS Y12, Y3; \
	VFMADD213PS Y11, Y2, Y3; \
	VFMADD213PS Y10, Y2, Y3; \
	VFMADD213PS Y9, Y2, Y3; \
	VFMADD213PS Y8, Y2, Y3; \
	VFMADD213PS Y7, Y2, Y3; \
	VMULPS Y2, Y2, Y0; \
	VADDPS Y6, Y2, Y2; \
	VFMADD213PS Y2, Y0, Y3; \
	VCVTPS2DQ Y1, Y1; \
	VPSLLD $23, Y1, Y1; \
	VPADDD Y6, Y1, Y1; \
	VMULPS Y1, Y3, Y3

// func dotAVX2(a, b *float32, n int) float32
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

loop32:
	CMPQ CX, $32
	JL   loop8
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  loop32

loop8:
	CMPQ CX, $8
	JL   reduce
	VMOVUPS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  loop8

reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0

tail:
	CMPQ CX, $0
	JE   done
	VMOVSS (SI), X1
	VFMADD231SS (DI), X1, X0
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JMP  tail

done:
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func axpyAVX2(alpha float32, x, y *float32, n int)
TEXT ·axpyAVX2(SB), NOSPLIT, $0-32
	VBROADCASTSS alpha+0(FP), Y0
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ n+24(FP), CX

loop8:
	CMPQ CX, $8
	JL   tail
	VMOVUPS (DI), Y1
	VFMADD231PS (SI), Y0, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  loop8

tail:
	CMPQ CX, $0
	JE   done
	VMOVSS (DI), X1
	VFMADD231SS (SI), X0, X1
	VMOVSS X1, (DI)
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JMP  tail

done:
	VZEROUPPER
	RET

// func dotF16AVX2(a *float32, h *uint16, n int) float32
// n must be a multiple of 8.
TEXT ·dotF16AVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), DI
	MOVQ h+8(FP), SI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1

hloop16:
	CMPQ CX, $16
	JL   hloop8
	VCVTPH2PS (SI), Y4
	VCVTPH2PS 16(SI), Y5
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  hloop16

hloop8:
	CMPQ CX, $8
	JL   hreduce
	VCVTPH2PS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  hloop8

hreduce:
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func axpyF16AVX2(alpha float32, h *uint16, y *float32, n int)
// n must be a multiple of 8.
TEXT ·axpyF16AVX2(SB), NOSPLIT, $0-32
	VBROADCASTSS alpha+0(FP), Y0
	MOVQ h+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ n+24(FP), CX

hxloop8:
	CMPQ CX, $8
	JL   hxdone
	VCVTPH2PS (SI), Y1
	VMOVUPS (DI), Y2
	VFMADD231PS Y1, Y0, Y2
	VMOVUPS Y2, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  hxloop8

hxdone:
	VZEROUPPER
	RET

// func hasF16C() bool
TEXT ·hasF16C(SB), NOSPLIT, $0-1
	MOVL $1, AX
	XORL CX, CX
	CPUID
	SHRL $29, CX
	ANDL $1, CX
	MOVB CX, ret+0(FP)
	RET

// func dotBF16AVX2(w *byte, a *float32, n int) float32
// w holds n little-endian bfloat16 values; n must be a multiple of 8.
TEXT ·dotBF16AVX2(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ a+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1

bloop16:
	CMPQ CX, $16
	JL   bloop8
	VPMOVZXWD (SI), Y4
	VPMOVZXWD 16(SI), Y5
	VPSLLD $16, Y4, Y4
	VPSLLD $16, Y5, Y5
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  bloop16

bloop8:
	CMPQ CX, $8
	JL   breduce
	VPMOVZXWD (SI), Y4
	VPSLLD $16, Y4, Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  bloop8

breduce:
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func scoresF16(q *float32, k *uint16, stride int, hd int, npos int, scale float32, out *float32)
// out[p] = scale * Σ_i q[i]*half(k[p*stride+i]) for p < npos; hd is a
// multiple of 8. The sum runs as in dotF16AVX2.
TEXT ·scoresF16(SB), NOSPLIT, $0-56
	MOVQ   q+0(FP), DI
	MOVQ   k+8(FP), SI
	MOVQ   stride+16(FP), R8
	SHLQ   $1, R8
	MOVQ   hd+24(FP), R9
	MOVQ   npos+32(FP), R10
	VMOVSS scale+40(FP), X7
	MOVQ   out+48(FP), R11

sploop:
	TESTQ  R10, R10
	JZ     spdone
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	MOVQ   SI, AX
	MOVQ   DI, BX
	MOVQ   R9, CX

siloop16:
	CMPQ CX, $16
	JL   siloop8
	VCVTPH2PS (AX), Y4
	VCVTPH2PS 16(AX), Y5
	VFMADD231PS (BX), Y4, Y0
	VFMADD231PS 32(BX), Y5, Y1
	ADDQ $32, AX
	ADDQ $64, BX
	SUBQ $16, CX
	JMP  siloop16

siloop8:
	CMPQ CX, $8
	JL   sireduce
	VCVTPH2PS (AX), Y4
	VFMADD231PS (BX), Y4, Y0
	ADDQ $16, AX
	ADDQ $32, BX
	SUBQ $8, CX
	JMP  siloop8

sireduce:
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VMULSS X7, X0, X0
	VMOVSS X0, (R11)
	ADDQ $4, R11
	ADDQ R8, SI
	DECQ R10
	JMP  sploop

spdone:
	VZEROUPPER
	RET

// func mixF16(w *float32, v *uint16, stride int, hd int, npos int, out *float32)
// out[i] += Σ_p w[p]*half(v[p*stride+i]) for i < hd, summed in p order;
// hd is a multiple of 8.
TEXT ·mixF16(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), DI
	MOVQ v+8(FP), SI
	MOVQ stride+16(FP), R8
	SHLQ $1, R8
	MOVQ hd+24(FP), R9
	MOVQ npos+32(FP), R10
	MOVQ out+40(FP), R11

mtile32:
	CMPQ R9, $32
	JL   mtile8
	VMOVUPS (R11), Y0
	VMOVUPS 32(R11), Y1
	VMOVUPS 64(R11), Y2
	VMOVUPS 96(R11), Y3
	MOVQ SI, AX
	MOVQ DI, BX
	MOVQ R10, CX

m32p:
	TESTQ CX, CX
	JZ    m32store
	VBROADCASTSS (BX), Y6
	VCVTPH2PS (AX), Y4
	VFMADD231PS Y4, Y6, Y0
	VCVTPH2PS 16(AX), Y5
	VFMADD231PS Y5, Y6, Y1
	VCVTPH2PS 32(AX), Y4
	VFMADD231PS Y4, Y6, Y2
	VCVTPH2PS 48(AX), Y5
	VFMADD231PS Y5, Y6, Y3
	ADDQ $4, BX
	ADDQ R8, AX
	DECQ CX
	JMP  m32p

m32store:
	VMOVUPS Y0, (R11)
	VMOVUPS Y1, 32(R11)
	VMOVUPS Y2, 64(R11)
	VMOVUPS Y3, 96(R11)
	ADDQ $64, SI
	ADDQ $128, R11
	SUBQ $32, R9
	JMP  mtile32

mtile8:
	CMPQ R9, $8
	JL   mdone
	VMOVUPS (R11), Y0
	MOVQ SI, AX
	MOVQ DI, BX
	MOVQ R10, CX

m8p:
	TESTQ CX, CX
	JZ    m8store
	VBROADCASTSS (BX), Y6
	VCVTPH2PS (AX), Y4
	VFMADD231PS Y4, Y6, Y0
	ADDQ $4, BX
	ADDQ R8, AX
	DECQ CX
	JMP  m8p

m8store:
	VMOVUPS Y0, (R11)
	ADDQ $16, SI
	ADDQ $32, R11
	SUBQ $8, R9
	JMP  mtile8

mdone:
	VZEROUPPER
	RET

// Constants of expAVX2: log2(e), ln2 split in two, the polynomial, 1, and
// the input clamp.
DATA expc<>+0(SB)/4, $0x3fb8aa3b
DATA expc<>+4(SB)/4, $0x3f318000
DATA expc<>+8(SB)/4, $0xb95e8083
DATA expc<>+12(SB)/4, $0x39506967
DATA expc<>+16(SB)/4, $0x3ab743ce
DATA expc<>+20(SB)/4, $0x3c088908
DATA expc<>+24(SB)/4, $0x3d2aa9c1
DATA expc<>+28(SB)/4, $0x3e2aaaaa
DATA expc<>+32(SB)/4, $0x3f000000
DATA expc<>+36(SB)/4, $0x3f800000
DATA expc<>+40(SB)/4, $0x42b0999a
DATA expc<>+44(SB)/4, $0xc2ae999a
GLOBL expc<>(SB), RODATA|NOPTR, $48

// ln2lo eight times, for a memory operand (Y15 stays untouched: Go's
// internal ABI keeps X15 zero).
DATA expln2lo<>+0(SB)/4, $0xb95e8083
DATA expln2lo<>+4(SB)/4, $0xb95e8083
DATA expln2lo<>+8(SB)/4, $0xb95e8083
DATA expln2lo<>+12(SB)/4, $0xb95e8083
DATA expln2lo<>+16(SB)/4, $0xb95e8083
DATA expln2lo<>+20(SB)/4, $0xb95e8083
DATA expln2lo<>+24(SB)/4, $0xb95e8083
DATA expln2lo<>+28(SB)/4, $0xb95e8083
GLOBL expln2lo<>(SB), RODATA|NOPTR, $32

// func expAVX2(x *float32, n int, shift float32)
// x[i] = exp(x[i]-shift) for i < n, n a multiple of 8: x = k·ln2 + r with
// |r| <= ln2/2, exp(r) by a degree-7 polynomial, 2^k by exponent bits.
// Inputs (after the shift) are clamped to [-87.3, 88.3].
TEXT ·expAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS shift+16(FP), Y15
	EXPCONSTS

eloop:
	CMPQ CX, $8
	JL   edone
	VMOVUPS (DI), Y0
	VSUBPS Y15, Y0, Y0
	EXP8
	VMOVUPS Y3, (DI)
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  eloop

edone:
	VZEROUPPER
	RET

// func dotF16x8AVX2(h *byte, x *float32, stride int, n int, out *float32)
// out[t] = Σ half(h[i]) * x[t*stride/4+i] for t < 8, i < n; n is a
// positive multiple of 8, stride in bytes. Each half-precision weight is
// converted once for the eight rows.
TEXT ·dotF16x8AVX2(SB), NOSPLIT, $0-40
	MOVQ h+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ stride+16(FP), R9
	MOVQ n+24(FP), CX
	LEAQ (R9)(R9*2), R10
	LEAQ (R9)(R9*4), R11
	LEAQ (R10)(R10*1), R12
	LEAQ (R11)(R9*2), R13
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	SHRQ $3, CX
	JZ   f8done

f8loop:
	VCVTPH2PS (SI), Y8
	VFMADD231PS (DI), Y8, Y0
	VFMADD231PS (DI)(R9*1), Y8, Y1
	VFMADD231PS (DI)(R9*2), Y8, Y2
	VFMADD231PS (DI)(R10*1), Y8, Y3
	VFMADD231PS (DI)(R9*4), Y8, Y4
	VFMADD231PS (DI)(R11*1), Y8, Y5
	VFMADD231PS (DI)(R12*1), Y8, Y6
	VFMADD231PS (DI)(R13*1), Y8, Y7
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  f8loop

f8done:
	MOVQ out+32(FP), AX
	VEXTRACTF128 $1, Y0, X8
	VADDPS X8, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	MOVSS X0, 0(AX)
	VEXTRACTF128 $1, Y1, X8
	VADDPS X8, X1, X1
	VHADDPS X1, X1, X1
	VHADDPS X1, X1, X1
	MOVSS X1, 4(AX)
	VEXTRACTF128 $1, Y2, X8
	VADDPS X8, X2, X2
	VHADDPS X2, X2, X2
	VHADDPS X2, X2, X2
	MOVSS X2, 8(AX)
	VEXTRACTF128 $1, Y3, X8
	VADDPS X8, X3, X3
	VHADDPS X3, X3, X3
	VHADDPS X3, X3, X3
	MOVSS X3, 12(AX)
	VEXTRACTF128 $1, Y4, X8
	VADDPS X8, X4, X4
	VHADDPS X4, X4, X4
	VHADDPS X4, X4, X4
	MOVSS X4, 16(AX)
	VEXTRACTF128 $1, Y5, X8
	VADDPS X8, X5, X5
	VHADDPS X5, X5, X5
	VHADDPS X5, X5, X5
	MOVSS X5, 20(AX)
	VEXTRACTF128 $1, Y6, X8
	VADDPS X8, X6, X6
	VHADDPS X6, X6, X6
	VHADDPS X6, X6, X6
	MOVSS X6, 24(AX)
	VEXTRACTF128 $1, Y7, X8
	VADDPS X8, X7, X7
	VHADDPS X7, X7, X7
	VHADDPS X7, X7, X7
	MOVSS X7, 28(AX)
	VZEROUPPER
	RET

// func dotF16RowAVX2(h *byte, x *float32, n int) float32
// Σ half(h[i]) * x[i] for i < n; n is a positive multiple of 8. Four
// accumulators over 32 values per iteration, then 8 at a time.
TEXT ·dotF16RowAVX2(SB), NOSPLIT, $0-28
	MOVQ h+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

r32loop:
	CMPQ CX, $32
	JL   r8loop
	VCVTPH2PS (SI), Y4
	VCVTPH2PS 16(SI), Y5
	VCVTPH2PS 32(SI), Y6
	VCVTPH2PS 48(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $64, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  r32loop

r8loop:
	CMPQ CX, $8
	JL   r8done
	VCVTPH2PS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  r8loop

r8done:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func dotF16T3x4AVX2(h *byte, hs int, x *float32, xs int, n int, out *float32)
// out[3t+r] = Σ half(h[r*hs/2+i]) * x[t*xs/4+i] for r < 3, t < 4, i < n;
// n is a positive multiple of 8, hs and xs in bytes. One accumulator per
// (row, token), as dotF16x8AVX2 keeps one per token.
TEXT ·dotF16T3x4AVX2(SB), NOSPLIT, $0-48
	MOVQ h+0(FP), SI
	MOVQ hs+8(FP), R8
	MOVQ x+16(FP), DI
	MOVQ xs+24(FP), R9
	MOVQ n+32(FP), CX
	LEAQ (R9)(R9*2), R10
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	SHRQ $3, CX
	JZ   t34done

t34loop:
	VCVTPH2PS (SI), Y12
	VCVTPH2PS (SI)(R8*1), Y13
	VCVTPH2PS (SI)(R8*2), Y14
	VMOVUPS (DI), Y15
	VFMADD231PS Y15, Y12, Y0
	VFMADD231PS Y15, Y13, Y1
	VFMADD231PS Y15, Y14, Y2
	VMOVUPS (DI)(R9*1), Y15
	VFMADD231PS Y15, Y12, Y3
	VFMADD231PS Y15, Y13, Y4
	VFMADD231PS Y15, Y14, Y5
	VMOVUPS (DI)(R9*2), Y15
	VFMADD231PS Y15, Y12, Y6
	VFMADD231PS Y15, Y13, Y7
	VFMADD231PS Y15, Y14, Y8
	VMOVUPS (DI)(R10*1), Y15
	VFMADD231PS Y15, Y12, Y9
	VFMADD231PS Y15, Y13, Y10
	VFMADD231PS Y15, Y14, Y11
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  t34loop

t34done:
	MOVQ out+40(FP), AX
	VEXTRACTF128 $1, Y0, X12
	VADDPS X12, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	MOVSS X0, 0(AX)
	VEXTRACTF128 $1, Y1, X12
	VADDPS X12, X1, X1
	VHADDPS X1, X1, X1
	VHADDPS X1, X1, X1
	MOVSS X1, 4(AX)
	VEXTRACTF128 $1, Y2, X12
	VADDPS X12, X2, X2
	VHADDPS X2, X2, X2
	VHADDPS X2, X2, X2
	MOVSS X2, 8(AX)
	VEXTRACTF128 $1, Y3, X12
	VADDPS X12, X3, X3
	VHADDPS X3, X3, X3
	VHADDPS X3, X3, X3
	MOVSS X3, 12(AX)
	VEXTRACTF128 $1, Y4, X12
	VADDPS X12, X4, X4
	VHADDPS X4, X4, X4
	VHADDPS X4, X4, X4
	MOVSS X4, 16(AX)
	VEXTRACTF128 $1, Y5, X12
	VADDPS X12, X5, X5
	VHADDPS X5, X5, X5
	VHADDPS X5, X5, X5
	MOVSS X5, 20(AX)
	VEXTRACTF128 $1, Y6, X12
	VADDPS X12, X6, X6
	VHADDPS X6, X6, X6
	VHADDPS X6, X6, X6
	MOVSS X6, 24(AX)
	VEXTRACTF128 $1, Y7, X12
	VADDPS X12, X7, X7
	VHADDPS X7, X7, X7
	VHADDPS X7, X7, X7
	MOVSS X7, 28(AX)
	VEXTRACTF128 $1, Y8, X12
	VADDPS X12, X8, X8
	VHADDPS X8, X8, X8
	VHADDPS X8, X8, X8
	MOVSS X8, 32(AX)
	VEXTRACTF128 $1, Y9, X12
	VADDPS X12, X9, X9
	VHADDPS X9, X9, X9
	VHADDPS X9, X9, X9
	MOVSS X9, 36(AX)
	VEXTRACTF128 $1, Y10, X12
	VADDPS X12, X10, X10
	VHADDPS X10, X10, X10
	VHADDPS X10, X10, X10
	MOVSS X10, 40(AX)
	VEXTRACTF128 $1, Y11, X12
	VADDPS X12, X11, X11
	VHADDPS X11, X11, X11
	VHADDPS X11, X11, X11
	MOVSS X11, 44(AX)
	VZEROUPPER
	RET

// func maxAVX2(x *float32, n int) float32
// The largest of x[0..n), n a positive multiple of 8.
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VMOVUPS (DI), Y0
	ADDQ $32, DI
	SUBQ $8, CX

mloop:
	CMPQ CX, $8
	JL   mdone
	VMAXPS (DI), Y0, Y0
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  mloop

mdone:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4E, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xB1, X0, X1
	VMAXPS X1, X0, X0
	VZEROUPPER
	MOVSS X0, ret+16(FP)
	RET

// func sum64AVX2(x *float32, n int) float64
// Σ x[0..n) in float64, n a multiple of 8.
TEXT ·sum64AVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1

sloop:
	CMPQ CX, $8
	JL   sdone
	VCVTPS2PD (DI), Y2
	VCVTPS2PD 16(DI), Y3
	VADDPD Y2, Y0, Y0
	VADDPD Y3, Y1, Y1
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  sloop

sdone:
	VADDPD Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VPERMILPD $1, X0, X1
	VADDSD X1, X0, X0
	VZEROUPPER
	MOVSD X0, ret+16(FP)
	RET

// func scaleHalfF16C(x *float32, n int, s float32)
// x[i] = half(x[i]*s) for i < n, n a multiple of 8 (round to nearest even).
TEXT ·scaleHalfF16C(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS s+16(FP), Y2

hloop:
	CMPQ CX, $8
	JL   hdone
	VMULPS (DI), Y2, Y0
	VCVTPS2PH $0, Y0, X1
	VCVTPH2PS X1, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  hloop

hdone:
	VZEROUPPER
	RET

// func toF16F16C(h *uint16, x *float32, n int)
// h[i] = half(x[i]) for i < n, n a multiple of 8 (round to nearest even).
TEXT ·toF16F16C(SB), NOSPLIT, $0-24
	MOVQ h+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX

tloop:
	CMPQ CX, $8
	JL   tdone
	VMOVUPS (SI), Y0
	VCVTPS2PH $0, Y0, X1
	VMOVDQU X1, (DI)
	ADDQ $32, SI
	ADDQ $16, DI
	SUBQ $8, CX
	JMP  tloop

tdone:
	VZEROUPPER
	RET

// func siluMulAVX2(gp, up *float32, n int)
// g[i] = g[i] / (1 + exp(-g[i])) * u[i] for i < n, n a multiple of 8:
// SiLU times the up projection, with expAVX2's exp of the negated input
// (clamped the same way), so results equal Exp followed by the same
// float32 divide and multiply.
TEXT ·siluMulAVX2(SB), NOSPLIT, $0-24
	MOVQ gp+0(FP), DI
	MOVQ up+8(FP), SI
	MOVQ n+16(FP), CX
	EXPCONSTS
	VXORPS Y15, Y15, Y15

sloop:
	CMPQ CX, $8
	JL   sdone
	VMOVUPS (DI), Y0
	VSUBPS Y0, Y15, Y0
	EXP8
	VADDPS Y6, Y3, Y3
	VMOVUPS (DI), Y0
	VDIVPS Y3, Y0, Y0
	VMULPS (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  sloop

sdone:
	VZEROUPPER
	RET

// func anyAboveAVX2(x *float32, n int, t float32) bool
// Reports whether x[i] > t for some i < n (n a multiple of 8); NaN
// compares false (ordered, non-signalling greater-than).
TEXT ·anyAboveAVX2(SB), NOSPLIT, $0-25
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS t+16(FP), Y15
	VXORPS Y3, Y3, Y3

aloop:
	CMPQ CX, $8
	JL   adone
	VMOVUPS (DI), Y1
	VCMPPS $0x1E, Y15, Y1, Y2
	VORPS Y2, Y3, Y3
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  aloop

adone:
	VMOVMSKPS Y3, AX
	TESTL AX, AX
	SETNE ret+24(FP)
	VZEROUPPER
	RET

// func sumSqAVX2(x *float32, n int) float64
// Σ float64(x[i]*x[i]) for i < n, n a multiple of 8: each square rounded
// to float32 (as ggml's RMS norm forms it), summed in float64 in eight
// lanes.
TEXT ·sumSqAVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3

qloop:
	CMPQ CX, $8
	JL   qdone
	VMOVUPS (SI), Y0
	VMULPS Y0, Y0, Y0
	VCVTPS2PD X0, Y1
	VADDPD Y1, Y2, Y2
	VEXTRACTF128 $1, Y0, X0
	VCVTPS2PD X0, Y1
	VADDPD Y1, Y3, Y3
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  qloop

qdone:
	VADDPD Y3, Y2, Y2
	VEXTRACTF128 $1, Y2, X3
	VADDPD X3, X2, X2
	VPERMILPD $1, X2, X3
	VADDSD X3, X2, X2
	VZEROUPPER
	MOVSD X2, ret+16(FP)
	RET

// func scaleMulAVX2(out, x, w *float32, n int, s float32)
// out[i] = x[i]*s*w[i] for i < n, n a multiple of 8 (the products in that
// order, in float32).
TEXT ·scaleMulAVX2(SB), NOSPLIT, $0-36
	MOVQ out+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ w+16(FP), DX
	MOVQ n+24(FP), CX
	VBROADCASTSS s+32(FP), Y15

mloop2:
	CMPQ CX, $8
	JL   mdone2
	VMULPS (SI), Y15, Y0
	VMULPS (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  mloop2

mdone2:
	VZEROUPPER
	RET
