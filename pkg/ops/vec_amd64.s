#include "textflag.h"

// func maxRows3AVX512(dst, a, b, c *float32, n int)
//
// dst[i] = max(a[i], b[i], c[i]) for i < n, a NaN in any of them winning,
// 16 values per step and the last n%16 under a mask. VMAXPS returns its
// second source when either is a NaN, so each max puts the new row there
// and then takes back the accumulator's NaN lanes.
TEXT ·maxRows3AVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ c+24(FP), CX
	MOVQ n+32(FP), R8
	KXNORW K1, K1, K1
loop:
	CMPQ R8, $16
	JGE full
	TESTQ R8, R8
	JZ done
	MOVL $1, AX
	SHLXL R8, AX, AX
	DECL AX
	KMOVW AX, K1
	MOVQ $16, R8
full:
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DX), K1, Z1
	VMOVUPS.Z (CX), K1, Z2
	VMAXPS Z1, Z0, Z3
	VCMPPS $3, Z0, Z0, K2
	VMOVAPS Z0, K2, Z3
	VMAXPS Z2, Z3, Z0
	VCMPPS $3, Z3, Z3, K2
	VMOVAPS Z3, K2, Z0
	VMOVUPS Z0, K1, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, CX
	ADDQ $64, DI
	SUBQ $16, R8
	JMP loop
done:
	VZEROUPPER
	RET

// func sumRows3AVX512(dst, a, b, c *float32, n int)
//
// dst[i] = (a[i] + b[i]) + c[i] for i < n, as maxRows3AVX512 walks them.
TEXT ·sumRows3AVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ c+24(FP), CX
	MOVQ n+32(FP), R8
	KXNORW K1, K1, K1
sloop:
	CMPQ R8, $16
	JGE sfull
	TESTQ R8, R8
	JZ sdone
	MOVL $1, AX
	SHLXL R8, AX, AX
	DECL AX
	KMOVW AX, K1
	MOVQ $16, R8
sfull:
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DX), K1, Z1
	VMOVUPS.Z (CX), K1, Z2
	VADDPS Z1, Z0, Z0
	VADDPS Z2, Z0, Z0
	VMOVUPS Z0, K1, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, CX
	ADDQ $64, DI
	SUBQ $16, R8
	JMP sloop
sdone:
	VZEROUPPER
	RET

// func addAVX512(dst, a, b *float32, n int)
//
// dst[i] = a[i] + b[i] for i < n, as maxRows3AVX512 walks them.
TEXT ·addAVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), R8
	KXNORW K1, K1, K1
aloop:
	CMPQ R8, $16
	JGE afull
	TESTQ R8, R8
	JZ adone
	MOVL $1, AX
	SHLXL R8, AX, AX
	DECL AX
	KMOVW AX, K1
	MOVQ $16, R8
afull:
	VMOVUPS.Z (SI), K1, Z0
	VADDPS.Z (DX), Z0, K1, Z0
	VMOVUPS Z0, K1, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, R8
	JMP aloop
adone:
	VZEROUPPER
	RET
