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
	// lineValues is the number of float32 values in a 64-byte cache line.
	lineValues = 16
)

// mvecMaxColumns is the widest product hint (PackOptions.Columns) that
// selects the m-vector layout: Res2Net-50's 14x14 and 7x7 layers (n = 196
// and 49 at batch 1). Measured on a Zen 4 core against the default
// layout, with the epilogue of a block's last conv: n = 49 runs 1.3-1.5x
// faster (the default's avx512Small fills 49 of 64 lanes) and n = 196
// 1.1-1.2x (13x32 tiles leave a 4-column tail), and their batch-8 widths
// (392 and 1568) about as fast or faster, while at n = 784 the two are
// even; BenchmarkForward fp32 at batch 1 / 1 thread and batch 8 / 2
// threads was fastest with this bound, ahead of 64 and of 784.
const mvecMaxColumns = 196

// mvecColumns reports whether a matrix for products about n wide gets the
// m-vector layout.
func mvecColumns(n int) bool { return n > 0 && n <= mvecMaxColumns }

// mvecInL2 is the most values of A that blockMVec keeps in L2 while it
// passes the tiles of B over them, leaving room for a tile of B.
const mvecInL2 = l2Block / 4

// maxMVecLD bounds the leading dimensions of C and the residual in a
// product with the m-vector layout: the kernels address the 16 rows of a
// vector with 32-bit offsets (row*ld, in values).
const maxMVecLD = math.MaxInt32 / mvecGroup

// layoutMVec returns the m-vector layout of an m x k matrix for kn,
// without its values: see packMVec (ld is the panels' depth, k or
// (k+1)/2 pairs).
func layoutMVec(kn *kernel, m, k int) *PackedA {
	rows := roundUp(m, mvecGroup)
	return &PackedA{m: m, k: k, kn: kn, rows: rows, kc: k, nk: 1, ld: kn.rows(k)}
}

// packMVec packs a into p in the m-vector layout: A is cut into panels
// of mvecRows rows (the last one rounded up to whole vectors of
// mvecGroup rows, zero-padded), and panel i0/mvecRows holds, from
// i0*p.ld, for each of the p.ld steps in turn the panel's values of that
// step: a vector of A per step for each group of 16 rows. A step is a
// column of A, or for a bf16 kernel a pair of columns (see packPairs,
// p.ld = (k+1)/2, the last pair of an odd k with a zero upper half). k is
// not sliced: a tile accumulates its whole sum in registers and is stored
// once, through a transpose.
func (p *PackedA) packMVec(a []float32, lda int) {
	var pairs []float32
	if p.kn.bf16 {
		pairs = make([]float32, p.ld)
	}
	for i0 := 0; i0 < p.m; i0 += mvecRows {
		width := min(mvecRows, p.rows-i0)
		rows := min(width, p.m-i0)
		panel := p.data[i0*p.ld : (i0+width)*p.ld]
		// Row by row: the rows are often 4 KiB apart, so reading down a
		// column would make every read compete for the same L1 sets.
		for r := range rows {
			steps := a[(i0+r)*lda : (i0+r)*lda+p.k]
			if pairs != nil {
				packPairs(pairs, steps)
				steps = pairs
			}
			for q, v := range steps {
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
// reading B in place, in one k slice. When that much of A fits in L2 the
// tiles of B pass over all of it, each from memory once; otherwise blocks
// of B's columns that fit in L2 pass under each row panel of A in turn,
// which the kernels prefetch a panel ahead. The last, partial column tile
// reads a copy of its columns of B padded to mvecCols, since the kernels
// read all of them. A bf16 kernel reads B converted into pairs, a block
// of columns at a time (see pairBlock).
func (p *problem) blockMVec(kn *kernel, i0, i1, j0, j1 int) {
	t := tiler{p: p, kn: kn, kc: p.k, last: true}
	if p.accumulate {
		t.flags = flagAccumulate
	}
	if p.ep.ReLU {
		t.flags |= flagReLU
	}
	steps := kn.rows(p.k) // rows of the panels and of B: k, or pairs
	full := j0 + (j1-j0)/mvecCols*mvecCols
	var ws *workspace
	if full < j1 || kn.pairPanels != nil {
		ws = wsPool.Get().(*workspace)
		defer wsPool.Put(ws)
	}
	if full < j1 && kn.pairPanels == nil {
		ws.b = grow(ws.b, steps*mvecCols)
		for q := range steps {
			row := ws.b[q*mvecCols : (q+1)*mvecCols]
			clear(row[copy(row, p.b[q*p.ldb+full:q*p.ldb+j1]):])
		}
	}
	pairs := 0 // the first column of the block of B in pairs in ws.b
	// tile computes the tile of columns [j, j+cols) in the row panel at
	// i and, when next is not negative, prefetches cache lines
	// [n*k, (n+1)*k) of the panel at row next: the first tiles of a
	// panel bring the next one into L2 between them (see mvecKernel).
	tile := func(i, j, cols, n, next int) {
		rows := min(mvecRows, i1-i)
		width := roundUp(rows, mvecGroup)
		prefetch := 0 // bytes from this panel; 0 prefetches what the kernel reads anyway
		if next >= 0 && n*steps*lineValues < min(mvecRows, p.packed.rows-next)*steps {
			prefetch = 4 * ((next-i)*steps + n*steps*lineValues)
		}
		b, ldb := p.b[j:], p.ldb
		switch {
		case kn.pairPanels != nil:
			b, ldb = ws.b[(j-pairs)*steps:], mvecCols
		case j == full:
			b, ldb = ws.b, mvecCols
		}
		run := kn.mvec[width/mvecGroup-1]
		if kn.mvecHalf != nil && width-rows >= mvecGroup/2 {
			run = kn.mvecHalf[width/mvecGroup-1]
		}
		t.call(run, p.packed.data[i*steps:], prefetch, &b[0], ldb, i, rows, j, cols)
	}
	// When A fits in L2, B is one block (for bf16, one per mvecPairsBlock
	// of pairs) whose tiles each pass over every panel; otherwise blocks
	// of B that fit in L2 pass under each panel in turn.
	inL2 := (i1-i0)*steps <= mvecInL2
	nc := j1 - j0
	switch {
	case kn.pairPanels != nil:
		nc = max(mvecCols, mvecPairsBlock/(4*steps)/mvecCols*mvecCols)
	case !inL2:
		nc = max(mvecCols, l2Block/(4*steps)/mvecCols*mvecCols)
	}
	for jc := j0; jc < j1; jc += nc {
		jend := min(jc+nc, j1)
		if kn.pairPanels != nil {
			p.pairBlock(kn, ws, jc, jend)
			pairs = jc
		}
		if inL2 {
			// Each tile of B is read from memory once, then from L1 by
			// the other panels.
			for j := jc; j < jend; j += mvecCols {
				for i := i0; i < i1; i += mvecRows {
					tile(i, j, min(mvecCols, jend-j), 0, -1)
				}
			}
			continue
		}
		// A panel is read from memory once per block of B (spread over
		// the previous panel's first tiles) and then from L2 by its
		// other tiles.
		for i := i0; i < i1; i += mvecRows {
			next := i + mvecRows
			switch {
			case next < i1:
			case jend < j1:
				next = i0
			default:
				next = -1
			}
			for n, j := 0, jc; j < jend; n, j = n+1, j+mvecCols {
				tile(i, j, min(mvecCols, jend-j), n, next)
			}
		}
	}
}

// mvecGrid returns how an m-vector product of rowTiles panels by
// colTiles tiles is cut into at most maxChunks chunks: rowParts ranges of
// panels by colParts ranges of tiles. Panels first, since each chunk reads
// the rows of A of its panels, the larger operand of a narrow product,
// which a column cut makes two chunks read (from L3 when A does not fit
// in L2, as the deep layers' weights do not); columns are cut only as far
// as the panels are too few for maxChunks, so that the goroutines still
// finish together when the last panel is short (Res2Net's 208 rows: three
// panels of 64 and one of 16).
func mvecGrid(rowTiles, colTiles, maxChunks int) (rowParts, colParts int) {
	rowParts = min(rowTiles, maxChunks)
	return rowParts, max(1, min(colTiles, maxChunks/rowParts))
}
