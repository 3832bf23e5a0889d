#include "textflag.h"

// func vec3AVX512(op int, dst, a, b, c *float32, n int)
//
// For i < n, 16 values per step and the last n%16 under a mask:
// dst[i] = max(a[i], b[i], c[i]) for vecMax3, a NaN in any of them
// winning; (a[i] + b[i]) + c[i] for vecSum3; a[i] + b[i] for vecAdd (c
// unread). VMAXPS returns its second source when either is a NaN, so each
// max puts the new row there and then takes back the accumulator's NaN
// lanes.
TEXT ·vec3AVX512(SB), NOSPLIT, $0-48
	MOVQ op+0(FP), R9
	MOVQ dst+8(FP), DI
	MOVQ a+16(FP), SI
	MOVQ b+24(FP), DX
	MOVQ c+32(FP), CX
	MOVQ n+40(FP), R8
	TESTQ CX, CX
	CMOVQEQ DX, CX // vecAdd: read b again as c, harmlessly
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
	CMPQ R9, $1
	JEQ sum3
	JGT add
	VMAXPS Z1, Z0, Z3
	VCMPPS $3, Z0, Z0, K2
	VMOVAPS Z0, K2, Z3
	VMAXPS Z2, Z3, Z0
	VCMPPS $3, Z3, Z3, K2
	VMOVAPS Z3, K2, Z0
	JMP store
sum3:
	VADDPS Z1, Z0, Z0
	VADDPS Z2, Z0, Z0
	JMP store
add:
	VADDPS Z1, Z0, Z0
store:
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
