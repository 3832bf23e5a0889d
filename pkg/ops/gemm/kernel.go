package gemm

import (
	"math/bits"
	"unsafe"
)

// Flags passed to a micro-kernel.
const (
	flagAccumulate = 1 // add the product to C instead of overwriting it
	flagReLU       = 2 // clamp the stored tile at zero (after bias and residual)
)

// kernelFunc computes one tile of C, at most kernel.mr x kernel.nr, from k
// steps of A and B: a holds kernel.mr rows of k values of A, lda values
// apart, and b holds k rows of kernel.nr values of B, ldb apart (packed
// panels, or A and B themselves). All of those are read, whatever the
// size of the tile.
//
// The tile starts at c with leading dimension ldc; only its first mr rows
// and the columns whose bit is set in mask (always the low bits) are read
// or written, so edge tiles need no copy. With flagAccumulate the product
// is added to C. Then, in Epilogue order: bias[r] is added to row r (bias
// may be nil), the residual tile res (leading dimension ldr, may be nil)
// is added, and flagReLU clamps at zero.
type kernelFunc func(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc, mr int, mask uint64, flags int, bias, res *float32, ldr int)

// kernel is a micro-kernel with its tile shape and blocking.
type kernel struct {
	name   string
	mr, nr int
	// kc is the deepest packed panel: an mr x kc panel of A stays in L1
	// while kc x nr panels of B stream through from L2.
	kc  int
	run kernelFunc
	// half, when not nil, is the same kernel for nr/2 columns: it
	// computes the last panel of a block when that is at most half full.
	half kernelFunc
	// runPFB, when not nil, is run prefetching B rows ahead, for reading
	// B in place; without it B is always packed.
	runPFB kernelFunc
	// small, when not nil, replaces this kernel for products at most
	// small.nr wide, for which it reads A in place: its few rows stay in
	// L1 even when they are a multiple of 4 KiB apart, where this
	// kernel's would all compete for the same cache sets.
	small *kernel
	// packB, when not nil, is a fast packBlock for a B that is not
	// transposed, given the number of full panels, the width of the
	// partial one and its row length.
	packB func(dst, b *float32, ldb, kc, full, rem, lastNR int)
	// mvec, when not nil, makes this a kernel vectorised along m (see
	// blockMVec): mvec[g-1] computes tiles of g groups of 16 rows and
	// nr columns from a PackedA in the m-vector layout, and run, half,
	// small and packB are unused.
	mvec []kernelFunc
	// mvecHalf, when not nil, is mvec for tiles whose last group has at
	// most 8 rows, which mvecHalf[g-1] multiplies in 256-bit halves: on
	// cores that split 512-bit operations in two (Zen 4) that costs half
	// as much, and Res2Net's 104-row products end in a panel of 40 rows.
	mvecHalf []kernelFunc
	// pairPanels, for a bf16 m-vector kernel, converts k rows of n
	// values of B (ldb apart) into the pairs its kernels read: panels of
	// mvecCols columns, panel values apart, of (k+1)/2 rows of pairs
	// (the odd last pair's upper half zero, the last panel zero-padded).
	pairPanels func(dst, b *float32, ldb, panel, k, n int)
	// bf16 kernels read A and B as bfloat16 pairs: each 32-bit value
	// holds two consecutive k steps, the first in its lower half, and
	// their k argument counts pairs. Their packB rounds B, and their A
	// is always a PackedA in BF16 (for an m-vector kernel, B is
	// converted by pairPanels).
	bf16 bool
}

// rows returns the number of 32-bit rows that a kc-deep slice of k takes
// in kn's packed panels, which is also the kernel's k argument: kc, or
// (kc+1)/2 pairs (the last one zero-padded) for bf16.
func (kn *kernel) rows(kc int) int {
	if kn.bf16 {
		return (kc + 1) / 2
	}
	return kc
}

// l2Block is the budget for the packed kc x nc block of B, which is reused
// from L2 by every row panel of A. Half of the 1 MiB L2 of current server
// cores leaves room for the streaming A panels and C tiles.
const l2Block = 512 << 10

// colMask returns the kernel column mask for the first n columns.
func colMask(n int) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<n - 1
}

// generic is the portable kernel; the assembly kernels are faster wherever
// the CPU has them.
var generic = &kernel{name: "go-4x4", mr: 4, nr: 4, kc: 256, run: kernelGo}

// kernelGo is the pure-Go micro-kernel of generic: a 4x4 tile held in
// sixteen scalars, which stay in registers on architectures with 32 of
// them for floating point (arm64, ppc64, riscv64).
func kernelGo(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc, mr int, mask uint64, flags int, bias, res *float32, ldr int) {
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	var c20, c21, c22, c23, c30, c31, c32, c33 float32
	if k > 0 {
		as := unsafe.Slice(a, 3*lda+k)
		a0s, a1s, a2s, a3s := as[:k], as[lda:lda+k], as[2*lda:2*lda+k], as[3*lda:3*lda+k]
		bs := unsafe.Slice(b, (k-1)*ldb+4)
		for p := range a0s {
			bp := bs[p*ldb : p*ldb+4 : p*ldb+4]
			b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
			a0, a1, a2, a3 := a0s[p], a1s[p], a2s[p], a3s[p]
			c00, c01, c02, c03 = c00+a0*b0, c01+a0*b1, c02+a0*b2, c03+a0*b3
			c10, c11, c12, c13 = c10+a1*b0, c11+a1*b1, c12+a1*b2, c13+a1*b3
			c20, c21, c22, c23 = c20+a2*b0, c21+a2*b1, c22+a2*b2, c23+a2*b3
			c30, c31, c32, c33 = c30+a3*b0, c31+a3*b1, c32+a3*b2, c33+a3*b3
		}
	}
	tile := [4][4]float32{
		{c00, c01, c02, c03}, {c10, c11, c12, c13},
		{c20, c21, c22, c23}, {c30, c31, c32, c33},
	}
	nr := bits.TrailingZeros64(^mask)
	cs := unsafe.Slice(c, (mr-1)*ldc+nr)
	var bs, rs []float32
	if bias != nil {
		bs = unsafe.Slice(bias, mr)
	}
	if res != nil {
		rs = unsafe.Slice(res, (mr-1)*ldr+nr)
	}
	for r := 0; r < mr; r++ {
		row := cs[r*ldc : r*ldc+nr]
		for j := range row {
			v := tile[r][j]
			if flags&flagAccumulate != 0 {
				v += row[j]
			}
			if bs != nil {
				v += bs[r]
			}
			if rs != nil {
				v += rs[r*ldr+j]
			}
			if flags&flagReLU != 0 && v < 0 {
				v = 0
			}
			row[j] = v
		}
	}
}
