package gemm

// The m-vector layout in BF16 (bf16MVec): A is packed as in packMVec but
// with pairs of k steps in place of k steps, and B, which the fp32
// m-vector kernels read in place, is converted once per call into panels
// of pairs (kernel.pairPanels), mvecCols columns each, that the kernels
// read sequentially; blockMVec and the epilogue are shared with FP32.

// mvecMaxColumnsBF16 is mvecMaxColumns for BF16 matrices.
const mvecMaxColumnsBF16 = 196

// mvecColumnsBF16 reports whether a BF16 matrix for products about n wide
// gets the m-vector layout.
func mvecColumnsBF16(n int) bool { return n > 0 && n <= mvecMaxColumnsBF16 }

// packMVecBF16 packs a into p in the m-vector layout on bfloat16 pairs:
// panel i0/mvecRows holds, from i0*p.ld (p.ld = (k+1)/2 pairs), for each
// pair of k steps the panel's pairs of that step, one vector of 16 pairs
// per group of 16 rows (zero-padded rows, and a zero upper half in the
// last pair of an odd k).
func (p *PackedA) packMVecBF16(a []float32, lda int) {
	pairs := make([]float32, p.ld)
	for i0 := 0; i0 < p.m; i0 += mvecRows {
		width := min(mvecRows, p.rows-i0)
		rows := min(width, p.m-i0)
		panel := p.data[i0*p.ld : (i0+width)*p.ld]
		for r := range rows {
			packPairs(pairs, a[(i0+r)*lda:(i0+r)*lda+p.k])
			for q, v := range pairs {
				panel[q*width+r] = v
			}
		}
	}
}

// pairB replaces the B of t, whose kernel has pairPanels, by its
// conversion into panels of pairs in a workspace from wsPool, which it
// returns for the caller to put back once the product is done: the tile
// at column j then reads B from j*kn.rows(k), mvecCols pairs a row (see
// blockMVec). When t runs serially it converts B at once; otherwise it
// makes the conversion the first jobs of t, one per goroutine, which the
// chunks wait for like a shared packed B.
func (t *task) pairB(serial bool, threads int) *workspace {
	p, kn := &t.problem, t.kn
	rows := kn.rows(p.k)
	ws := wsPool.Get().(*workspace)
	ws.b = grow(ws.b, rows*roundUp(p.n, mvecCols))
	t.srcB, t.srcLDB = p.b, p.ldb
	p.b, p.ldb = ws.b, mvecCols
	if serial {
		t.pairJob(0, rows)
		return ws
	}
	t.packPanels = (rows + threads - 1) / threads
	t.packJobs = (rows + t.packPanels - 1) / t.packPanels
	return ws
}

// pairJob converts pair rows [q0, q1) of t's B (see pairB).
func (t *task) pairJob(q0, q1 int) {
	p := &t.problem
	panel := t.kn.rows(p.k) * mvecCols
	t.kn.pairPanels(&p.b[q0*mvecCols], &t.srcB[2*q0*t.srcLDB], t.srcLDB, panel, min(2*q1, p.k)-2*q0, p.n)
}
