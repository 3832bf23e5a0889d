package gemm

import (
	"fmt"
	"math"
)

// The m-vector kernels compute tiles of up to mvecRows rows (mvecRows /
// mvecGroup vectors along m) by mvecCols columns.
const (
	mvecGroup = 16 // rows per vector: 16 float32 lanes of a zmm register
	mvecRows  = 4 * mvecGroup
	// mvecCols is 7 because every spatial size of Res2Net at its 224x224
	// crop is a multiple of 7 (224 = 32*7), so its products have no
	// partial tile.
	mvecCols = 7
)

// mvecMaxColumns is the widest product hint (PackOptions.Columns) that
// selects the m-vector layout.
const mvecMaxColumns = 64

// mvecColumns reports whether a matrix for products about n wide gets the
// m-vector layout. The default kernels vectorise along n, 16 lanes at a
// time, and at n <= 64 run avx512Small's 64 columns whatever n is: the
// 7x7 layers of Res2Net (n = 49 at batch 1) fill 49 of its 64 lanes.
func mvecColumns(n int) bool { return n > 0 && n <= mvecMaxColumns }

// maxMVecLD bounds the leading dimensions of C and the residual in a
// product with the m-vector layout: the kernels address the 16 rows of a
// vector with 32-bit offsets (row*ld, in values).
const maxMVecLD = math.MaxInt32 / mvecGroup

// layoutMVec returns the m-vector layout of an m x k matrix for kn,
// without its values: see packMVec.
func layoutMVec(kn *kernel, m, k int) *PackedA {
	rows := roundUp(m, mvecGroup)
	return &PackedA{m: m, k: k, kn: kn, rows: rows, kc: k, nk: 1, ld: k}
}

// packMVec packs a into p in the m-vector layout: A is cut into panels
// of mvecRows rows (the last one rounded up to whole vectors of
// mvecGroup rows, zero-padded), and panel i0/mvecRows holds, from
// i0*k, for each of the k columns in turn the panel's values of that
// column: a vector of A per k step for each group of 16 rows. k is not
// sliced: a tile accumulates its whole sum in registers and is stored
// once, since its stores are scatters.
func (p *PackedA) packMVec(a []float32, lda int) {
	for i0 := 0; i0 < p.m; i0 += mvecRows {
		width := min(mvecRows, p.rows-i0)
		panel := p.data[i0*p.k : (i0+width)*p.k]
		for r := range min(width, p.m-i0) {
			row := a[(i0+r)*lda : (i0+r)*lda+p.k]
			for q, v := range row {
				panel[q*width+r] = v
			}
		}
	}
}

// checkMVec panics unless the leading dimensions of p's C and residual
// fit the m-vector kernels' offsets.
func (p *problem) checkMVec() {
	if p.ldc > maxMVecLD || p.ep.LDR > maxMVecLD {
		panic(fmt.Sprintf("gemm: leading dimension %d of C or %d of the residual is over %d, the m-vector layout's limit",
			p.ldc, p.ep.LDR, maxMVecLD))
	}
}

// blockMVec computes rows [i0, i1) (from a multiple of mvecRows) and
// columns [j0, j1) of C with an m-vector kernel kn from the packed A,
// reading B in place. Each row panel of A passes over all the column
// tiles before the next, so that the panel (mvecRows x k values) is read
// from memory once and then from L2, while all of B stays in L2. The
// last, partial column tile reads a copy of its columns of B padded to
// mvecCols, since the kernels read all of them.
func (p *problem) blockMVec(kn *kernel, i0, i1, j0, j1 int) {
	t := tiler{p: p, kn: kn, kc: p.k, last: true}
	if p.accumulate {
		t.flags = flagAccumulate
	}
	if p.ep.ReLU {
		t.flags |= flagReLU
	}
	full := j0 + (j1-j0)/mvecCols*mvecCols
	var ws *workspace
	if full < j1 {
		ws = wsPool.Get().(*workspace)
		ws.b = grow(ws.b, p.k*mvecCols)
		for q := range p.k {
			row := ws.b[q*mvecCols : (q+1)*mvecCols]
			clear(row[copy(row, p.b[q*p.ldb+full:q*p.ldb+j1]):])
		}
	}
	for i := i0; i < i1; i += mvecRows {
		rows := min(mvecRows, i1-i)
		width := roundUp(rows, mvecGroup)
		run, a := kn.mvec[width/mvecGroup-1], p.packed.data[i*p.k:]
		for j := j0; j < full; j += mvecCols {
			t.call(run, a, width, &p.b[j], p.ldb, i, rows, j, mvecCols)
		}
		if full < j1 {
			t.call(run, a, width, &ws.b[0], mvecCols, i, rows, full, j1-full)
		}
	}
	if ws != nil {
		wsPool.Put(ws)
	}
}

// mvecSplitM reports whether chunks of an m-vector product of m x n are
// row ranges, else column ranges: whichever has more tiles, for the more
// even split between the goroutines.
func mvecSplitM(m, n int) bool {
	return (m+mvecRows-1)/mvecRows >= (n+mvecCols-1)/mvecCols
}
