package gemm

import "fmt"

// PackedA is a matrix A packed once for many products A*B, as a layer's
// weights are used for every image: Fused packs A again on every call,
// which for the narrow products of the late layers (n = 49 or 196) costs
// a large share of the multiply.
//
// The default layout is the one Fused packs into per call, for all of A
// at once: k is cut into the slices the kernel works in, and slice pk
// holds every row of A, kc values each, ld apart. Any mr rows from a
// multiple of mr therefore form a ready panel for a kernel with mr rows,
// whichever of this CPU's kernels a product picks; the rows past m are
// zeros. The m-vector layout, for narrow products (see PackOptions), is
// described at packMVec.
type PackedA struct {
	m, k   int
	kn     *kernel // the kernel the layout is for: it fixes the layout and the precision
	rows   int     // m rounded up to whole panels of every kernel that may read them
	kc, nk int     // depth and count of the k slices
	ld     int     // row stride within a slice, in 32-bit values
	data   []float32
}

// PackOptions are what PackWith and PackedFromValues choose the layout of
// a packed matrix from, besides its shape.
type PackOptions struct {
	// Precision is the arithmetic of the products. BF16 falls back to
	// FP32 on a CPU without HasBF16; PackedA.Precision says which a
	// matrix got.
	Precision Precision
	// Columns is the typical width n of the products the matrix will be
	// used for, per image (for a conv's weights, its output positions at
	// the input size the network is usually run at), or 0 when unknown.
	// It only selects the layout, and with it the kernels: products of
	// any width are exact with either. Matrices for products at most
	// 196 wide (Res2Net's 14x14 and 7x7 layers at batch 1, where it
	// measured faster in either precision) get the m-vector layout,
	// whose kernels vectorise along m and so fill every lane however
	// narrow the product; the others get the default layout.
	Columns int
}

// PackA packs the m x k row-major matrix a (leading dimension lda) for
// PackedA.Mul with the kernel Fused uses on this CPU. The result does not
// refer to a, which may then change or be freed. It panics if a is too
// short for its shape, like Fused.
func PackA(m, k int, a []float32, lda int) *PackedA {
	return PackAPrecision(FP32, m, k, a, lda)
}

// PackAPrecision is PackA for products in the given precision. BF16 falls
// back to FP32 on a CPU without HasBF16; the result's Precision says which
// it got.
func PackAPrecision(prec Precision, m, k int, a []float32, lda int) *PackedA {
	return PackWith(PackOptions{Precision: prec}, m, k, a, lda)
}

// PackWith is PackA in the layout that opts select.
func PackWith(opts PackOptions, m, k int, a []float32, lda int) *PackedA {
	checkMatrix("A", m, k, a, lda)
	return packA(opts.kernel(), m, k, a, lda)
}

// kernel returns the kernel of the products of a matrix packed with o,
// which fixes its layout.
func (o PackOptions) kernel() *kernel {
	switch {
	case o.Precision == BF16 && bestBF16MVec != nil && mvecColumnsBF16(o.Columns):
		return bestBF16MVec
	case o.Precision == BF16 && bestBF16 != nil:
		return bestBF16
	case bestMVec != nil && mvecColumns(o.Columns):
		return bestMVec
	}
	return best
}

// MVector reports whether p has the m-vector layout (see PackOptions),
// whose kernels compute tiles of 7 columns, so that products even a few
// tiles wide keep them busy.
func (p *PackedA) MVector() bool { return p.kn.mvec != nil }

// Precision returns the precision of p's products.
func (p *PackedA) Precision() Precision {
	if p.kn.bf16 {
		return BF16
	}
	return FP32
}

// packA packs a for kn and, if it has one, kn.small: as float32 values, or
// for bf16 kernels as bfloat16 pairs (see packPairs); for an m-vector
// kernel in the m-vector layout (packMVec).
func packA(kn *kernel, m, k int, a []float32, lda int) *PackedA {
	p := layoutA(kn, m, k)
	p.data = make([]float32, p.size())
	if kn.mvec != nil {
		p.packMVec(a, lda)
		return p
	}
	src := problem{a: a, lda: lda, alpha: 1}
	for pk := range p.nk {
		pc := pk * p.kc
		slice := p.slice(pk)
		if kn.bf16 {
			for r := range m {
				packPairs(slice[r*p.ld:], a[r*lda+pc:r*lda+min(pc+p.kc, k)])
			}
			continue
		}
		// packAPanel zeroes the rows past m.
		src.packAPanel(slice, p.ld, p.rows, 0, m, pc, min(p.kc, k-pc))
	}
	return p
}

// layoutA returns the layout of an m x k matrix packed for kn, without
// its values.
func layoutA(kn *kernel, m, k int) *PackedA {
	if kn.mvec != nil {
		return layoutMVec(kn, m, k)
	}
	rows := roundUp(m, kn.mr)
	if kn.small != nil {
		rows = max(rows, roundUp(m, kn.small.mr))
	}
	align := 1
	if kn.bf16 {
		align = 2 // whole pairs in every slice but the last
	}
	kc, nk := split(max(k, 1), kn.kc, align)
	// The extra cache line keeps power-of-two depths from mapping every
	// row of a panel to the same L1 sets, as in newPlan.
	ld := roundUp(kn.rows(kc), 16) + 16
	return &PackedA{m: m, k: k, kn: kn, rows: rows, kc: kc, nk: nk, ld: ld}
}

// size is the number of 32-bit values of p's layout.
func (p *PackedA) size() int { return p.nk * p.rows * p.ld }

// slice returns k slice pk: rows x ld values.
func (p *PackedA) slice(pk int) []float32 {
	size := p.rows * p.ld
	return p.data[pk*size : (pk+1)*size]
}

// Mul computes C = A*B followed by ep, exactly as Fused(m, n, k, A, ...)
// would with the matrix p was packed from: B is k x n (leading dimension
// ldb) and C is m x n (ldc), row-major; C is overwritten and must not
// overlap B or the residual. It uses up to Threads() goroutines and
// panics if a slice is too short for its shape.
func (p *PackedA) Mul(n int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
	p.MulThreads(Threads(), n, b, ldb, c, ldc, ep)
}

// MulThreads is Mul on up to threads goroutines instead of Threads();
// threads < 1 means Threads().
func (p *PackedA) MulThreads(threads, n int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
	mul(problem{m: p.m, n: n, k: p.k, packed: p, b: b, ldb: ldb, c: c, ldc: ldc, alpha: 1, ep: ep, threads: threads})
}

// checkEpilogue panics unless ep fits an m x n product.
func checkEpilogue(m, n int, ep Epilogue) {
	if ep.Bias != nil && len(ep.Bias) < m {
		panic(fmt.Sprintf("gemm: bias has %d values, need %d", len(ep.Bias), m))
	}
	if ep.Residual != nil {
		checkMatrix("residual", m, n, ep.Residual, ep.LDR)
	}
}

// epilogueOnly sets C to ep applied to zeros: the product when k is 0.
func epilogueOnly(m, n int, c []float32, ldc int, ep Epilogue) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		clear(row)
		applyEpilogue(row, i, ep)
	}
}
