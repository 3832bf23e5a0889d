package gemm

// The m-vector layout in BF16 (bf16MVec): A is packed as in packMVec but
// with pairs of k steps in place of k steps, and B, which the fp32
// m-vector kernels read in place, is converted by blocks of columns into
// panels of pairs (kernel.pairPanels), mvecCols columns each, that the
// kernels read sequentially; blockMVec and the epilogue are shared with
// FP32.

// mvecMaxColumnsBF16 is mvecMaxColumns for BF16 matrices, measured apart
// on a Zen 4 core against the bf16 13x32 kernels (BenchmarkBF16Layouts):
// stage 4's products run 1.1-1.4x faster at n = 49 and as fast or faster
// at their batch-8 width (392); stage 3's 5-11 % faster at n = 196 but
// 5-15 % slower at 1568 on one thread (on two, -7 to +3 %). Whole passes
// (res2net bench, both bounds in alternation, 11 rounds): bf16 at batch 1
// / 1 thread 54.6 ms with this bound against 56.1 with 49 (stage 4 only),
// at batch 8 / 2 threads 29.1 ms with either.
const mvecMaxColumnsBF16 = 196

// mvecPairsBlock is the budget in bytes of the block of B that a bf16
// m-vector product converts into pairs at a time: half of l2Block, since
// the kernels' A panels (tens of KB, more than L1 holds) stream from L2
// beside it. At batch 8 (n = 1568) stage 3's products ran 7-12 % faster
// than with l2Block, and no faster with a quarter.
const mvecPairsBlock = l2Block / 2

// mvecColumnsBF16 reports whether a BF16 matrix for products about n wide
// gets the m-vector layout.
func mvecColumnsBF16(n int) bool { return n > 0 && n <= mvecMaxColumnsBF16 }

// pairBlock converts columns [j0, j1) of p's B for kn, which has
// pairPanels, into ws.b: the tile at column j then reads B from
// (j-j0)*kn.rows(k), mvecCols pairs a row. A block at a time (see
// blockMVec), so that the pairs are still in L2 when the kernels read
// them: B converted whole is as wide as the product (megabytes at batch
// 8), and went to memory and back, a quarter of the time of such calls.
func (p *problem) pairBlock(kn *kernel, ws *workspace, j0, j1 int) {
	steps := kn.rows(p.k)
	ws.b = grow(ws.b, steps*roundUp(j1-j0, mvecCols))
	kn.pairPanels(&ws.b[0], &p.b[j0], p.ldb, steps*mvecCols, p.k, j1-j0)
}
