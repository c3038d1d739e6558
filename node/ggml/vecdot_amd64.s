//go:build amd64 && !purego

#include "textflag.h"

// AVX2 kernels for the integer dot products of vecdot.go. Each keeps
// ggml's per-block arithmetic: integer products summed per block (or per
// sub-block, times its integer scale), then scaled once by the block's
// float factors. Only the order of the float additions differs.

// func dotQ8_0AVX2(nb int, x, y *byte, tab *float32) float32
TEXT ·dotQ8_0AVX2(SB), NOSPLIT, $0-36
	MOVQ nb+0(FP), CX
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ tab+24(FP), R8
	VXORPS Y0, Y0, Y0
	MOVL $0x0F0F0F0F, AX
	MOVQ AX, X14
	VPBROADCASTD X14, Y14
	MOVL $0x00010001, AX
	MOVQ AX, X15
	VPBROADCASTD X15, Y15
	TESTQ CX, CX
	JZ done
loop:
	MOVWLZX (SI), AX
	MOVWLZX (DI), BX
	VMOVSS (R8)(AX*4), X1
	VMULSS (R8)(BX*4), X1, X1
	VBROADCASTSS X1, Y1
	VMOVDQU 2(SI), Y2
	VMOVDQU 2(DI), Y3
	VPSIGNB Y2, Y2, Y4
	VPSIGNB Y2, Y3, Y5
	VPMADDUBSW Y5, Y4, Y6
	VPMADDWD Y15, Y6, Y6
	VCVTDQ2PS Y6, Y6
	VMULPS Y1, Y6, Y6
	VADDPS Y6, Y0, Y0
	ADDQ $34, SI
	ADDQ $34, DI
	DECQ CX
	JNZ loop
done:
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+32(FP)
	RET

// func dotQ4_0AVX2(nb int, x, y *byte, tab *float32) float32
TEXT ·dotQ4_0AVX2(SB), NOSPLIT, $0-36
	MOVQ nb+0(FP), CX
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ tab+24(FP), R8
	VXORPS Y0, Y0, Y0
	MOVL $0x0F0F0F0F, AX
	MOVQ AX, X14
	VPBROADCASTD X14, Y14
	MOVL $0x00010001, AX
	MOVQ AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x08080808, AX
	MOVQ AX, X13
	VPBROADCASTD X13, Y13
	TESTQ CX, CX
	JZ done
loop:
	MOVWLZX (SI), AX
	MOVWLZX (DI), BX
	VMOVSS (R8)(AX*4), X1
	VMULSS (R8)(BX*4), X1, X1
	VBROADCASTSS X1, Y1
	VMOVDQU 2(SI), X2
	VPSRLW $4, X2, X3
	VINSERTI128 $1, X3, Y2, Y2
	VPAND Y14, Y2, Y2
	VPSUBB Y13, Y2, Y2
	VMOVDQU 2(DI), Y3
	VPSIGNB Y2, Y2, Y4
	VPSIGNB Y2, Y3, Y5
	VPMADDUBSW Y5, Y4, Y6
	VPMADDWD Y15, Y6, Y6
	VCVTDQ2PS Y6, Y6
	VMULPS Y1, Y6, Y6
	VADDPS Y6, Y0, Y0
	ADDQ $18, SI
	ADDQ $34, DI
	DECQ CX
	JNZ loop
done:
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+32(FP)
	RET
