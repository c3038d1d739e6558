//go:build !purego

#include "textflag.h"
// REDUCE8 leaves in Y0 the sums of the eight lanes of each of Y0..Y7
// (lane k of Y0 is the sum of Yk): pairwise horizontal adds, then the two
// 128-bit halves added.
#define REDUCE8 \
	VHADDPS Y1, Y0, Y0; \
	VHADDPS Y3, Y2, Y2; \
	VHADDPS Y5, Y4, Y4; \
	VHADDPS Y7, Y6, Y6; \
	VHADDPS Y2, Y0, Y0; \
	VHADDPS Y6, Y4, Y4; \
	VPERM2F128 $0x20, Y4, Y0, Y1; \
	VPERM2F128 $0x31, Y4, Y0, Y2; \
	VADDPS Y2, Y1, Y0

// FOLD8 adds the upper 256 bits of each of Z0..Z7 to its lower half.
#define FOLD8 \
	VEXTRACTF64X4 $1, Z0, Y8; \
	VADDPS Y8, Y0, Y0; \
	VEXTRACTF64X4 $1, Z1, Y8; \
	VADDPS Y8, Y1, Y1; \
	VEXTRACTF64X4 $1, Z2, Y8; \
	VADDPS Y8, Y2, Y2; \
	VEXTRACTF64X4 $1, Z3, Y8; \
	VADDPS Y8, Y3, Y3; \
	VEXTRACTF64X4 $1, Z4, Y8; \
	VADDPS Y8, Y4, Y4; \
	VEXTRACTF64X4 $1, Z5, Y8; \
	VADDPS Y8, Y5, Y5; \
	VEXTRACTF64X4 $1, Z6, Y8; \
	VADDPS Y8, Y6, Y6; \
	VEXTRACTF64X4 $1, Z7, Y8; \
	VADDPS Y8, Y7, Y7

// func scoresGAVX2(q *float32, qs, nq int, k *uint16, ks, hd, nb int, scale float32, out *float32, os int, scr *float32)
// For each of nb blocks of eight keys (rows ks bytes apart) and each of
// the nq queries (qs bytes apart): out[g][p] = scale * q[g]·half(k[p]),
// stored as eight floats at out + g*os. With one query the keys are
// converted as they are read; with more, each block is first converted
// into scr, the eight keys' chunks of 8 values side by side, and every
// query is dotted against that copy. Eight accumulators (one per key) are
// reduced together by REDUCE8.
TEXT ·scoresGAVX2(SB), NOSPLIT, $0-88
	MOVQ         k+24(FP), SI
	MOVQ         ks+32(FP), R8
	MOVQ         hd+40(FP), R9
	SHRQ         $3, R9
	MOVQ         nb+48(FP), R10
	VBROADCASTSS scale+56(FP), Y15
	MOVQ         out+64(FP), R11
	MOVQ         scr+80(FP), DI

sablock:
	TESTQ R10, R10
	JZ    sadone
	LEAQ  (R8)(R8*2), R12
	MOVQ  SI, AX
	LEAQ  (SI)(R8*4), BX
	CMPQ  nq+16(FP), $1
	JEQ   sadirect
	MOVQ  DI, DX
	MOVQ  R9, CX

saconv:
	VCVTPH2PS (AX), Y0
	VCVTPH2PS (AX)(R8*1), Y1
	VCVTPH2PS (AX)(R8*2), Y2
	VCVTPH2PS (AX)(R12*1), Y3
	VCVTPH2PS (BX), Y4
	VCVTPH2PS (BX)(R8*1), Y5
	VCVTPH2PS (BX)(R8*2), Y6
	VCVTPH2PS (BX)(R12*1), Y7
	VMOVUPS   Y0, 0(DX)
	VMOVUPS   Y1, 32(DX)
	VMOVUPS   Y2, 64(DX)
	VMOVUPS   Y3, 96(DX)
	VMOVUPS   Y4, 128(DX)
	VMOVUPS   Y5, 160(DX)
	VMOVUPS   Y6, 192(DX)
	VMOVUPS   Y7, 224(DX)
	ADDQ      $16, AX
	ADDQ      $16, BX
	ADDQ      $256, DX
	DECQ      CX
	JNZ       saconv
	MOVQ      q+0(FP), DX
	MOVQ      R11, R13
	MOVQ      nq+16(FP), R12

sahead:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ   DI, AX
	MOVQ   DX, BX
	MOVQ   R9, CX

sadot:
	VMOVUPS (BX), Y8
	VFMADD231PS 0(AX), Y8, Y0
	VFMADD231PS 32(AX), Y8, Y1
	VFMADD231PS 64(AX), Y8, Y2
	VFMADD231PS 96(AX), Y8, Y3
	VFMADD231PS 128(AX), Y8, Y4
	VFMADD231PS 160(AX), Y8, Y5
	VFMADD231PS 192(AX), Y8, Y6
	VFMADD231PS 224(AX), Y8, Y7
	ADDQ    $32, BX
	ADDQ    $256, AX
	DECQ    CX
	JNZ     sadot
	REDUCE8
	VMULPS  Y15, Y0, Y0
	VMOVUPS Y0, (R13)
	ADDQ    qs+8(FP), DX
	ADDQ    os+72(FP), R13
	DECQ    R12
	JNZ     sahead
	JMP     sanext

sadirect:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ   q+0(FP), DX
	MOVQ   R9, CX

sadloop:
	VMOVUPS (DX), Y8
	VCVTPH2PS   (AX), Y9
	VFMADD231PS Y9, Y8, Y0
	VCVTPH2PS   (AX)(R8*1), Y10
	VFMADD231PS Y10, Y8, Y1
	VCVTPH2PS   (AX)(R8*2), Y11
	VFMADD231PS Y11, Y8, Y2
	VCVTPH2PS   (AX)(R12*1), Y12
	VFMADD231PS Y12, Y8, Y3
	VCVTPH2PS   (BX), Y13
	VFMADD231PS Y13, Y8, Y4
	VCVTPH2PS   (BX)(R8*1), Y14
	VFMADD231PS Y14, Y8, Y5
	VCVTPH2PS   (BX)(R8*2), Y9
	VFMADD231PS Y9, Y8, Y6
	VCVTPH2PS   (BX)(R12*1), Y10
	VFMADD231PS Y10, Y8, Y7
	ADDQ        $16, AX
	ADDQ        $16, BX
	ADDQ        $32, DX
	DECQ        CX
	JNZ         sadloop
	REDUCE8
	VMULPS      Y15, Y0, Y0
	VMOVUPS     Y0, (R11)

sanext:
	LEAQ (SI)(R8*8), SI
	ADDQ $32, R11
	DECQ R10
	JMP  sablock

sadone:
	VZEROUPPER
	RET

// Lane order of the sixteen sums after the transpose-add in
// scoresGAVX512: keys 0,2,4,6, 1,3,5,7, 8,10,12,14, 9,11,13,15; the
// permutation index puts key k back in lane k.
DATA attnperm<>+0(SB)/4, $0
DATA attnperm<>+4(SB)/4, $4
DATA attnperm<>+8(SB)/4, $1
DATA attnperm<>+12(SB)/4, $5
DATA attnperm<>+16(SB)/4, $2
DATA attnperm<>+20(SB)/4, $6
DATA attnperm<>+24(SB)/4, $3
DATA attnperm<>+28(SB)/4, $7
DATA attnperm<>+32(SB)/4, $8
DATA attnperm<>+36(SB)/4, $12
DATA attnperm<>+40(SB)/4, $9
DATA attnperm<>+44(SB)/4, $13
DATA attnperm<>+48(SB)/4, $10
DATA attnperm<>+52(SB)/4, $14
DATA attnperm<>+56(SB)/4, $11
DATA attnperm<>+60(SB)/4, $15
GLOBL attnperm<>(SB), RODATA|NOPTR, $64

// HADDZ sets a to the pairwise sums of a and b within each 128-bit lane
// (vhaddps on zmm registers), using t and u.
#define HADDZ(a, b, t, u) \
	VSHUFPS $0x88, b, a, t; \
	VSHUFPS $0xDD, b, a, u; \
	VADDPS  u, t, a

// func scoresGAVX512(q *float32, qs, nq int, k *uint16, ks, hd, nb int, scale float32, out *float32, os int, scr *float32)
// scoresGAVX2 for nb blocks of sixteen keys, hd a multiple of 8. Keys
// go in pairs: one zmm register holds eight values of key 2m in its low
// half and of key 2m+1 in its high half, multiplied by the query's eight
// values in both halves. Eight accumulators thus cover sixteen keys and
// are reduced together by two horizontal-add levels, one 128-bit lane
// shuffle and one permutation, with no per-key horizontal sum. With more
// than one query each block is converted once into scr (per eight values,
// the eight key pairs' registers side by side).
TEXT ·scoresGAVX512(SB), NOSPLIT, $0-88
	MOVQ         k+24(FP), SI
	MOVQ         ks+32(FP), R8
	LEAQ         (R8)(R8*2), R12
	MOVQ         hd+40(FP), R9
	SHRQ         $3, R9
	VBROADCASTSS scale+56(FP), Z15
	VMOVUPS      attnperm<>(SB), Z31
	MOVQ         scr+80(FP), DI

szblock:
	CMPQ nb+48(FP), $0
	JEQ  szdone
	// ask for the bytes of the block after this one (16 rows on; the
	// engine's rows are contiguous), which the hardware prefetcher is
	// slow to find in the short runs of one KV head's keys
	MOVQ R8, DX
	SHLQ $4, DX
	ADDQ SI, DX
	MOVQ R8, CX
	SHRQ $2, CX

szpf:
	PREFETCHT0 (DX)
	ADDQ       $64, DX
	DECQ       CX
	JNZ        szpf
	MOVQ SI, AX
	LEAQ (SI)(R8*4), BX
	LEAQ (SI)(R8*8), R10
	LEAQ (BX)(R8*8), R11
	MOVQ R9, CX
	CMPQ nq+16(FP), $1
	JEQ  szdirect
	MOVQ DI, DX

szconv:
	VMOVDQU     (AX), X9
	VINSERTI128 $1, (AX)(R8*1), Y9, Y9
	VCVTPH2PS   Y9, Z16
	VMOVDQU     (AX)(R8*2), X10
	VINSERTI128 $1, (AX)(R12*1), Y10, Y10
	VCVTPH2PS   Y10, Z17
	VMOVDQU     (BX), X11
	VINSERTI128 $1, (BX)(R8*1), Y11, Y11
	VCVTPH2PS   Y11, Z18
	VMOVDQU     (BX)(R8*2), X12
	VINSERTI128 $1, (BX)(R12*1), Y12, Y12
	VCVTPH2PS   Y12, Z19
	VMOVDQU     (R10), X13
	VINSERTI128 $1, (R10)(R8*1), Y13, Y13
	VCVTPH2PS   Y13, Z20
	VMOVDQU     (R10)(R8*2), X14
	VINSERTI128 $1, (R10)(R12*1), Y14, Y14
	VCVTPH2PS   Y14, Z21
	VMOVDQU     (R11), X9
	VINSERTI128 $1, (R11)(R8*1), Y9, Y9
	VCVTPH2PS   Y9, Z22
	VMOVDQU     (R11)(R8*2), X10
	VINSERTI128 $1, (R11)(R12*1), Y10, Y10
	VCVTPH2PS   Y10, Z23
	VMOVUPS     Z16, 0(DX)
	VMOVUPS     Z17, 64(DX)
	VMOVUPS     Z18, 128(DX)
	VMOVUPS     Z19, 192(DX)
	VMOVUPS     Z20, 256(DX)
	VMOVUPS     Z21, 320(DX)
	VMOVUPS     Z22, 384(DX)
	VMOVUPS     Z23, 448(DX)
	ADDQ        $16, AX
	ADDQ        $16, BX
	ADDQ        $16, R10
	ADDQ        $16, R11
	ADDQ        $512, DX
	DECQ        CX
	JNZ         szconv
	MOVQ        q+0(FP), DX
	MOVQ        out+64(FP), R13
	MOVQ        nq+16(FP), R10

szhead:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ   DI, AX
	MOVQ   DX, BX
	MOVQ   R9, CX

szdot:
	VBROADCASTF64X4 (BX), Z8
	VFMADD231PS     0(AX), Z8, Z0
	VFMADD231PS     64(AX), Z8, Z1
	VFMADD231PS     128(AX), Z8, Z2
	VFMADD231PS     192(AX), Z8, Z3
	VFMADD231PS     256(AX), Z8, Z4
	VFMADD231PS     320(AX), Z8, Z5
	VFMADD231PS     384(AX), Z8, Z6
	VFMADD231PS     448(AX), Z8, Z7
	ADDQ            $32, BX
	ADDQ            $512, AX
	DECQ            CX
	JNZ             szdot
	CALL            szreduce<>(SB)
	VMOVUPS         Z0, (R13)
	ADDQ            qs+8(FP), DX
	ADDQ            os+72(FP), R13
	DECQ            R10
	JNZ             szhead
	JMP             sznext

szdirect:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ   q+0(FP), DX

szdloop:
	VBROADCASTF64X4 (DX), Z8
	VMOVDQU         (AX), X9
	VINSERTI128     $1, (AX)(R8*1), Y9, Y9
	VCVTPH2PS       Y9, Z16
	VFMADD231PS     Z16, Z8, Z0
	VMOVDQU         (AX)(R8*2), X10
	VINSERTI128     $1, (AX)(R12*1), Y10, Y10
	VCVTPH2PS       Y10, Z17
	VFMADD231PS     Z17, Z8, Z1
	VMOVDQU         (BX), X11
	VINSERTI128     $1, (BX)(R8*1), Y11, Y11
	VCVTPH2PS       Y11, Z18
	VFMADD231PS     Z18, Z8, Z2
	VMOVDQU         (BX)(R8*2), X12
	VINSERTI128     $1, (BX)(R12*1), Y12, Y12
	VCVTPH2PS       Y12, Z19
	VFMADD231PS     Z19, Z8, Z3
	VMOVDQU         (R10), X13
	VINSERTI128     $1, (R10)(R8*1), Y13, Y13
	VCVTPH2PS       Y13, Z20
	VFMADD231PS     Z20, Z8, Z4
	VMOVDQU         (R10)(R8*2), X14
	VINSERTI128     $1, (R10)(R12*1), Y14, Y14
	VCVTPH2PS       Y14, Z21
	VFMADD231PS     Z21, Z8, Z5
	VMOVDQU         (R11), X9
	VINSERTI128     $1, (R11)(R8*1), Y9, Y9
	VCVTPH2PS       Y9, Z22
	VFMADD231PS     Z22, Z8, Z6
	VMOVDQU         (R11)(R8*2), X10
	VINSERTI128     $1, (R11)(R12*1), Y10, Y10
	VCVTPH2PS       Y10, Z23
	VFMADD231PS     Z23, Z8, Z7
	ADDQ            $16, AX
	ADDQ            $16, BX
	ADDQ            $16, R10
	ADDQ            $16, R11
	ADDQ            $32, DX
	DECQ            CX
	JNZ             szdloop
	CALL            szreduce<>(SB)
	MOVQ            out+64(FP), R13
	VMOVUPS         Z0, (R13)

sznext:
	LEAQ (SI)(R8*8), SI
	LEAQ (SI)(R8*8), SI
	ADDQ $64, out+64(FP)
	DECQ nb+48(FP)
	JMP  szblock

szdone:
	VZEROUPPER
	RET

// szreduce sets Z0 to scale (Z15) times the sixteen sums of scoresGAVX512's
// accumulators Z0..Z7, key k in lane k (Z31 holds the permutation).
TEXT szreduce<>(SB), NOSPLIT, $0-0
	HADDZ(Z0, Z1, Z16, Z17)
	HADDZ(Z2, Z3, Z18, Z19)
	HADDZ(Z4, Z5, Z20, Z21)
	HADDZ(Z6, Z7, Z22, Z23)
	HADDZ(Z0, Z2, Z16, Z17)
	HADDZ(Z4, Z6, Z18, Z19)
	VSHUFF32X4 $0x88, Z4, Z0, Z16
	VSHUFF32X4 $0xDD, Z4, Z0, Z17
	VADDPS     Z17, Z16, Z0
	VPERMPS    Z0, Z31, Z0
	VMULPS     Z15, Z0, Z0
	RET

// func mixGAVX2(w *float32, ws, nq int, v *uint16, vs, hd, npos int, out *float32, os int)
// out[g][i] += Σ_p w[g][p]*half(v[p][i]) for g < nq (1..4; rows of w ws
// bytes apart, of out os bytes apart), i < hd, p in order: the columns
// run in tiles, each value row converted once per tile and multiplied by
// every query's weight; queries past nq are skipped by branches that go
// the same way on every row.
TEXT ·mixGAVX2(SB), NOSPLIT, $0-72
	MOVQ w+0(FP), DI
	MOVQ ws+8(FP), R8
	LEAQ (R8)(R8*2), R12
	MOVQ nq+16(FP), DX
	MOVQ v+24(FP), SI
	MOVQ vs+32(FP), R9
	MOVQ hd+40(FP), R10
	MOVQ out+56(FP), R11
	MOVQ os+64(FP), R13

mat16:
	CMPQ R10, $16
	JL   mat8
	MOVQ R11, AX
	VMOVUPS 0(AX), Y0
	VMOVUPS 32(AX), Y1
	CMPQ DX, $2
	JL   mat16l
	ADDQ R13, AX
	VMOVUPS 0(AX), Y2
	VMOVUPS 32(AX), Y3
	CMPQ DX, $3
	JL   mat16l
	ADDQ R13, AX
	VMOVUPS 0(AX), Y4
	VMOVUPS 32(AX), Y5
	CMPQ DX, $4
	JL   mat16l
	ADDQ R13, AX
	VMOVUPS 0(AX), Y6
	VMOVUPS 32(AX), Y7

mat16l:
	MOVQ SI, AX
	MOVQ DI, BX
	MOVQ npos+48(FP), CX

mat16p:
	VCVTPH2PS 0(AX), Y8
	VCVTPH2PS 16(AX), Y9
	VBROADCASTSS (BX), Y10
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y10, Y1
	CMPQ DX, $2
	JL   mat16n
	VBROADCASTSS (BX)(R8*1), Y10
	VFMADD231PS Y8, Y10, Y2
	VFMADD231PS Y9, Y10, Y3
	CMPQ DX, $3
	JL   mat16n
	VBROADCASTSS (BX)(R8*2), Y10
	VFMADD231PS Y8, Y10, Y4
	VFMADD231PS Y9, Y10, Y5
	CMPQ DX, $4
	JL   mat16n
	VBROADCASTSS (BX)(R12*1), Y10
	VFMADD231PS Y8, Y10, Y6
	VFMADD231PS Y9, Y10, Y7

mat16n:
	ADDQ R9, AX
	ADDQ $4, BX
	DECQ CX
	JNZ  mat16p
	MOVQ R11, AX
	VMOVUPS Y0, 0(AX)
	VMOVUPS Y1, 32(AX)
	CMPQ DX, $2
	JL   mat16s
	ADDQ R13, AX
	VMOVUPS Y2, 0(AX)
	VMOVUPS Y3, 32(AX)
	CMPQ DX, $3
	JL   mat16s
	ADDQ R13, AX
	VMOVUPS Y4, 0(AX)
	VMOVUPS Y5, 32(AX)
	CMPQ DX, $4
	JL   mat16s
	ADDQ R13, AX
	VMOVUPS Y6, 0(AX)
	VMOVUPS Y7, 32(AX)

mat16s:
	ADDQ $32, SI
	ADDQ $64, R11
	SUBQ $16, R10
	JMP  mat16

mat8:
	CMPQ R10, $8
	JL   madone
	MOVQ R11, AX
	VMOVUPS 0(AX), Y0
	CMPQ DX, $2
	JL   mat8l
	ADDQ R13, AX
	VMOVUPS 0(AX), Y1
	CMPQ DX, $3
	JL   mat8l
	ADDQ R13, AX
	VMOVUPS 0(AX), Y2
	CMPQ DX, $4
	JL   mat8l
	ADDQ R13, AX
	VMOVUPS 0(AX), Y3

mat8l:
	MOVQ SI, AX
	MOVQ DI, BX
	MOVQ npos+48(FP), CX

mat8p:
	VCVTPH2PS 0(AX), Y4
	VBROADCASTSS (BX), Y5
	VFMADD231PS Y4, Y5, Y0
	CMPQ DX, $2
	JL   mat8n
	VBROADCASTSS (BX)(R8*1), Y5
	VFMADD231PS Y4, Y5, Y1
	CMPQ DX, $3
	JL   mat8n
	VBROADCASTSS (BX)(R8*2), Y5
	VFMADD231PS Y4, Y5, Y2
	CMPQ DX, $4
	JL   mat8n
	VBROADCASTSS (BX)(R12*1), Y5
	VFMADD231PS Y4, Y5, Y3

mat8n:
	ADDQ R9, AX
	ADDQ $4, BX
	DECQ CX
	JNZ  mat8p
	MOVQ R11, AX
	VMOVUPS Y0, 0(AX)
	CMPQ DX, $2
	JL   mat8s
	ADDQ R13, AX
	VMOVUPS Y1, 0(AX)
	CMPQ DX, $3
	JL   mat8s
	ADDQ R13, AX
	VMOVUPS Y2, 0(AX)
	CMPQ DX, $4
	JL   mat8s
	ADDQ R13, AX
	VMOVUPS Y3, 0(AX)

mat8s:
	ADDQ $16, SI
	ADDQ $32, R11
	SUBQ $8, R10
	JMP  mat8

madone:
	VZEROUPPER
	RET

// func mixGAVX512(w *float32, ws, nq int, v *uint16, vs, hd, npos int, out *float32, os int)
// out[g][i] += Σ_p w[g][p]*half(v[p][i]) for g < nq (1..4; rows of w ws
// bytes apart, of out os bytes apart), i < hd, p in order: the columns
// run in tiles, each value row converted once per tile and multiplied by
// every query's weight; queries past nq are skipped by branches that go
// the same way on every row.
TEXT ·mixGAVX512(SB), NOSPLIT, $0-72
	MOVQ w+0(FP), DI
	MOVQ ws+8(FP), R8
	LEAQ (R8)(R8*2), R12
	MOVQ nq+16(FP), DX
	MOVQ v+24(FP), SI
	MOVQ vs+32(FP), R9
	MOVQ hd+40(FP), R10
	MOVQ out+56(FP), R11
	MOVQ os+64(FP), R13

mzt64:
	CMPQ R10, $64
	JL   mzt16
	MOVQ R11, AX
	VMOVUPS 0(AX), Z0
	VMOVUPS 64(AX), Z1
	VMOVUPS 128(AX), Z2
	VMOVUPS 192(AX), Z3
	CMPQ DX, $2
	JL   mzt64l
	ADDQ R13, AX
	VMOVUPS 0(AX), Z4
	VMOVUPS 64(AX), Z5
	VMOVUPS 128(AX), Z6
	VMOVUPS 192(AX), Z7
	CMPQ DX, $3
	JL   mzt64l
	ADDQ R13, AX
	VMOVUPS 0(AX), Z8
	VMOVUPS 64(AX), Z9
	VMOVUPS 128(AX), Z10
	VMOVUPS 192(AX), Z11
	CMPQ DX, $4
	JL   mzt64l
	ADDQ R13, AX
	VMOVUPS 0(AX), Z12
	VMOVUPS 64(AX), Z13
	VMOVUPS 128(AX), Z14
	VMOVUPS 192(AX), Z15

mzt64l:
	MOVQ SI, AX
	MOVQ DI, BX
	MOVQ npos+48(FP), CX

mzt64p:
	VCVTPH2PS 0(AX), Z16
	VCVTPH2PS 32(AX), Z17
	VCVTPH2PS 64(AX), Z18
	VCVTPH2PS 96(AX), Z19
	VBROADCASTSS (BX), Z20
	VFMADD231PS Z16, Z20, Z0
	VFMADD231PS Z17, Z20, Z1
	VFMADD231PS Z18, Z20, Z2
	VFMADD231PS Z19, Z20, Z3
	CMPQ DX, $2
	JL   mzt64n
	VBROADCASTSS (BX)(R8*1), Z20
	VFMADD231PS Z16, Z20, Z4
	VFMADD231PS Z17, Z20, Z5
	VFMADD231PS Z18, Z20, Z6
	VFMADD231PS Z19, Z20, Z7
	CMPQ DX, $3
	JL   mzt64n
	VBROADCASTSS (BX)(R8*2), Z20
	VFMADD231PS Z16, Z20, Z8
	VFMADD231PS Z17, Z20, Z9
	VFMADD231PS Z18, Z20, Z10
	VFMADD231PS Z19, Z20, Z11
	CMPQ DX, $4
	JL   mzt64n
	VBROADCASTSS (BX)(R12*1), Z20
	VFMADD231PS Z16, Z20, Z12
	VFMADD231PS Z17, Z20, Z13
	VFMADD231PS Z18, Z20, Z14
	VFMADD231PS Z19, Z20, Z15

mzt64n:
	ADDQ R9, AX
	ADDQ $4, BX
	DECQ CX
	JNZ  mzt64p
	MOVQ R11, AX
	VMOVUPS Z0, 0(AX)
	VMOVUPS Z1, 64(AX)
	VMOVUPS Z2, 128(AX)
	VMOVUPS Z3, 192(AX)
	CMPQ DX, $2
	JL   mzt64s
	ADDQ R13, AX
	VMOVUPS Z4, 0(AX)
	VMOVUPS Z5, 64(AX)
	VMOVUPS Z6, 128(AX)
	VMOVUPS Z7, 192(AX)
	CMPQ DX, $3
	JL   mzt64s
	ADDQ R13, AX
	VMOVUPS Z8, 0(AX)
	VMOVUPS Z9, 64(AX)
	VMOVUPS Z10, 128(AX)
	VMOVUPS Z11, 192(AX)
	CMPQ DX, $4
	JL   mzt64s
	ADDQ R13, AX
	VMOVUPS Z12, 0(AX)
	VMOVUPS Z13, 64(AX)
	VMOVUPS Z14, 128(AX)
	VMOVUPS Z15, 192(AX)

mzt64s:
	ADDQ $128, SI
	ADDQ $256, R11
	SUBQ $64, R10
	JMP  mzt64

mzt16:
	CMPQ R10, $16
	JL   mzdone
	MOVQ R11, AX
	VMOVUPS 0(AX), Z0
	CMPQ DX, $2
	JL   mzt16l
	ADDQ R13, AX
	VMOVUPS 0(AX), Z1
	CMPQ DX, $3
	JL   mzt16l
	ADDQ R13, AX
	VMOVUPS 0(AX), Z2
	CMPQ DX, $4
	JL   mzt16l
	ADDQ R13, AX
	VMOVUPS 0(AX), Z3

mzt16l:
	MOVQ SI, AX
	MOVQ DI, BX
	MOVQ npos+48(FP), CX

mzt16p:
	VCVTPH2PS 0(AX), Z4
	VBROADCASTSS (BX), Z5
	VFMADD231PS Z4, Z5, Z0
	CMPQ DX, $2
	JL   mzt16n
	VBROADCASTSS (BX)(R8*1), Z5
	VFMADD231PS Z4, Z5, Z1
	CMPQ DX, $3
	JL   mzt16n
	VBROADCASTSS (BX)(R8*2), Z5
	VFMADD231PS Z4, Z5, Z2
	CMPQ DX, $4
	JL   mzt16n
	VBROADCASTSS (BX)(R12*1), Z5
	VFMADD231PS Z4, Z5, Z3

mzt16n:
	ADDQ R9, AX
	ADDQ $4, BX
	DECQ CX
	JNZ  mzt16p
	MOVQ R11, AX
	VMOVUPS Z0, 0(AX)
	CMPQ DX, $2
	JL   mzt16s
	ADDQ R13, AX
	VMOVUPS Z1, 0(AX)
	CMPQ DX, $3
	JL   mzt16s
	ADDQ R13, AX
	VMOVUPS Z2, 0(AX)
	CMPQ DX, $4
	JL   mzt16s
	ADDQ R13, AX
	VMOVUPS Z3, 0(AX)

mzt16s:
	ADDQ $32, SI
	ADDQ $64, R11
	SUBQ $16, R10
	JMP  mzt16

mzdone:
	VZEROUPPER
	RET

// func mix12AVX512(w *float32, ws int, v *uint16, vs, hd, npos int, out *float32, os int)
// mixGAVX512 for exactly twelve rows of weights (ws bytes apart) and
// outputs (os bytes apart): the columns run in tiles of sixteen, twelve
// accumulators, each value row converted once per tile for all twelve
// rows, the weights broadcast from memory by the FMAs. hd is a multiple
// of 16.
TEXT ·mix12AVX512(SB), NOSPLIT, $0-64
	MOVQ w+0(FP), DI
	MOVQ ws+8(FP), R8
	LEAQ (R8)(R8*2), R12
	MOVQ v+16(FP), SI
	MOVQ vs+24(FP), R9
	MOVQ hd+32(FP), DX
	SHRQ $4, DX
	MOVQ out+48(FP), R13

m12tile:
	MOVQ R13, AX
	VMOVUPS (AX), Z0
	ADDQ os+56(FP), AX
	VMOVUPS (AX), Z1
	ADDQ os+56(FP), AX
	VMOVUPS (AX), Z2
	ADDQ os+56(FP), AX
	VMOVUPS (AX), Z3
	ADDQ os+56(FP), AX
	VMOVUPS (AX), Z4
	ADDQ os+56(FP), AX
	VMOVUPS (AX), Z5
	ADDQ os+56(FP), AX
	VMOVUPS (AX), Z6
	ADDQ os+56(FP), AX
	VMOVUPS (AX), Z7
	ADDQ os+56(FP), AX
	VMOVUPS (AX), Z8
	ADDQ os+56(FP), AX
	VMOVUPS (AX), Z9
	ADDQ os+56(FP), AX
	VMOVUPS (AX), Z10
	ADDQ os+56(FP), AX
	VMOVUPS (AX), Z11
	MOVQ SI, AX
	MOVQ DI, BX
	LEAQ (DI)(R8*4), R10
	LEAQ (R10)(R8*4), R11
	MOVQ npos+40(FP), CX

m12p:
	VCVTPH2PS (AX), Z12
	VFMADD231PS.BCST (BX), Z12, Z0
	VFMADD231PS.BCST (BX)(R8*1), Z12, Z1
	VFMADD231PS.BCST (BX)(R8*2), Z12, Z2
	VFMADD231PS.BCST (BX)(R12*1), Z12, Z3
	VFMADD231PS.BCST (R10), Z12, Z4
	VFMADD231PS.BCST (R10)(R8*1), Z12, Z5
	VFMADD231PS.BCST (R10)(R8*2), Z12, Z6
	VFMADD231PS.BCST (R10)(R12*1), Z12, Z7
	VFMADD231PS.BCST (R11), Z12, Z8
	VFMADD231PS.BCST (R11)(R8*1), Z12, Z9
	VFMADD231PS.BCST (R11)(R8*2), Z12, Z10
	VFMADD231PS.BCST (R11)(R12*1), Z12, Z11
	ADDQ R9, AX
	ADDQ $4, BX
	ADDQ $4, R10
	ADDQ $4, R11
	DECQ CX
	JNZ  m12p
	MOVQ R13, AX
	VMOVUPS Z0, (AX)
	ADDQ os+56(FP), AX
	VMOVUPS Z1, (AX)
	ADDQ os+56(FP), AX
	VMOVUPS Z2, (AX)
	ADDQ os+56(FP), AX
	VMOVUPS Z3, (AX)
	ADDQ os+56(FP), AX
	VMOVUPS Z4, (AX)
	ADDQ os+56(FP), AX
	VMOVUPS Z5, (AX)
	ADDQ os+56(FP), AX
	VMOVUPS Z6, (AX)
	ADDQ os+56(FP), AX
	VMOVUPS Z7, (AX)
	ADDQ os+56(FP), AX
	VMOVUPS Z8, (AX)
	ADDQ os+56(FP), AX
	VMOVUPS Z9, (AX)
	ADDQ os+56(FP), AX
	VMOVUPS Z10, (AX)
	ADDQ os+56(FP), AX
	VMOVUPS Z11, (AX)
	ADDQ $32, SI
	ADDQ $64, R13
	DECQ DX
	JNZ  m12tile
	VZEROUPPER
	RET

// func prefetchLines(p *byte, n int)
// Asks for the n cache lines from p on (PREFETCHT0); n > 0.
TEXT ·prefetchLines(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX

plloop:
	PREFETCHT0 (SI)
	ADDQ       $64, SI
	DECQ       CX
	JNZ        plloop
	RET
