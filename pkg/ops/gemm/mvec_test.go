package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// mvecShapes are the products the m-vector layout is tested on besides
// oddShapes: row counts around whole vectors and whole panels (1, 15..17,
// 63..65, 100), widths around and below whole tiles (1..8, 13, 14, 49,
// 50), k = 1, a k that is not a multiple of the 4-step unrolling, the
// network's narrow products, and one with A too large for L2, in blocks
// of B's columns.
var mvecShapes = []shape{
	{1, 1, 1, 0}, {1, 7, 5, 0}, {16, 7, 1, 0}, {15, 3, 9, 1}, {17, 14, 30, 0},
	{32, 6, 4, 2}, {33, 13, 7, 0}, {48, 1, 11, 0}, {63, 49, 19, 1}, {64, 8, 2, 0},
	{65, 50, 37, 3}, {100, 5, 64, 0}, {130, 2, 3, 0}, {29, 196, 23, 1}, {208, 49, 187, 0},
	{71, 392, 13, 0}, {512, 49, 205, 0}, {200, 200, 700, 1},
}

// testMVec computes every case from A in the m-vector layout of kn
// (bestMVec or bestBF16MVec) on 1 to 3 goroutines, even the smallest split
// into chunks.
func testMVec(t *testing.T, kn *kernel, cases []*testCase) {
	if kn == nil {
		t.Skip("no m-vector kernels on this CPU")
	}
	defer func(c int) { minChunkWork = c }(minChunkWork)
	minChunkWork = 1
	for _, tc := range cases {
		pa := packA(kn, tc.m, tc.k, tc.a, tc.lda)
		for threads := 1; threads <= 3; threads++ {
			tc.runPacked(kn, pa, threads)
			tc.check(t, fmt.Sprintf("%dx%dx%d pad %d threads %d", tc.m, tc.n, tc.k, tc.ldc-tc.n, threads))
		}
	}
}

func TestMVecShapes(t *testing.T) {
	testMVec(t, bestMVec, mvecCases(rand.New(rand.NewPCG(31, 32)), newCase))
}

// mvecCases returns the cases of mvecShapes made by newCase (or bf16Case)
// with every epilogue, a quarter of them under the race detector.
func mvecCases(rng *rand.Rand, newCase func(*rand.Rand, shape, int) *testCase) []*testCase {
	var cases []*testCase
	for i, s := range mvecShapes {
		for parts := range 8 {
			if !raceEnabled || (i+parts)%4 == 0 {
				cases = append(cases, newCase(rng, s, parts))
			}
		}
	}
	return cases
}

// TestMVecAccumulate checks flagAccumulate in the m-vector kernels: C
// plus the product, then the epilogue.
func TestMVecAccumulate(t *testing.T) {
	if bestMVec == nil {
		t.Skip("no m-vector kernels on this CPU")
	}
	rng := rand.New(rand.NewPCG(33, 34))
	for _, s := range []shape{{65, 15, 9, 1}, {16, 7, 1, 0}, {100, 49, 40, 0}} {
		for parts := range 8 {
			tc := newCase(rng, s, parts)
			// The product of [A | I] and [B ; C0] is A*B + C0: the
			// expected values and tolerances of a k+m product.
			old := randSlice(rng, len(tc.c))
			wide := &testCase{m: s.m, n: s.n, k: s.k + s.m, lda: s.k + s.m, ldb: tc.ldb, ldc: tc.ldc, ep: tc.ep}
			wa := make([]float32, s.m*wide.lda)
			for i := range s.m {
				copy(wa[i*wide.lda:], tc.a[i*tc.lda:i*tc.lda+s.k])
				wa[i*wide.lda+s.k+i] = 1
			}
			wb := append(append([]float32(nil), tc.b[:s.k*tc.ldb]...), make([]float32, s.m*tc.ldb)...)
			for i := range s.m {
				copy(wb[(s.k+i)*tc.ldb:(s.k+i)*tc.ldb+s.n], old[i*tc.ldc:])
			}
			wide.expect(wa, wb)
			tc.want, tc.tol = wide.want, wide.tol
			for i := range tc.c {
				tc.c[i] = sentinel
				if i%tc.ldc < s.n {
					tc.c[i] = old[i]
				}
			}
			pa := packA(bestMVec, tc.m, tc.k, tc.a, tc.lda)
			runWith(&task{problem: problem{m: tc.m, n: tc.n, k: tc.k, packed: pa, b: tc.b, ldb: tc.ldb,
				c: tc.c, ldc: tc.ldc, alpha: 1, accumulate: true, ep: tc.ep}}, bestMVec, 1)
			tc.check(t, fmt.Sprintf("%dx%dx%d epilogue %d", s.m, s.n, s.k, parts))
		}
	}
}

// TestPackOptions checks which layout the options select, and that
// PackedFromValues with the same options restores it.
func TestPackOptions(t *testing.T) {
	mvec := bestMVec
	if mvec == nil {
		mvec = best
	}
	bf16, bf16MVec := bestBF16, bestBF16MVec
	if bf16 == nil {
		bf16 = best
	}
	if bf16MVec == nil {
		bf16MVec = mvec
	}
	rng := rand.New(rand.NewPCG(35, 36))
	tests := []struct {
		opts PackOptions
		want *kernel
	}{
		{PackOptions{}, best},
		{PackOptions{Columns: 1}, mvec},
		{PackOptions{Columns: 49}, mvec},
		{PackOptions{Columns: 196}, mvec},
		{PackOptions{Columns: 197}, best},
		{PackOptions{Columns: 3136}, best},
		{PackOptions{Precision: BF16}, bf16},
		{PackOptions{Precision: BF16, Columns: 1}, bf16MVec},
		{PackOptions{Precision: BF16, Columns: 49}, bf16MVec},
		{PackOptions{Precision: BF16, Columns: 196}, bf16MVec},
		{PackOptions{Precision: BF16, Columns: 197}, bf16},
	}
	for _, tt := range tests {
		tc := newCase(rng, shape{70, 49, 30, 0}, 7)
		pa := PackWith(tt.opts, tc.m, tc.k, tc.a, tc.lda)
		if pa.kn != tt.want {
			t.Errorf("%+v: layout for %s, want %s", tt.opts, pa.kn.name, tt.want.name)
		}
		restored, err := PackedFromValues(tt.opts, tc.m, tc.k, pa.Values())
		if err != nil {
			t.Fatalf("%+v: %v", tt.opts, err)
		}
		if restored.kn != pa.kn || restored.Precision() != pa.Precision() {
			t.Errorf("%+v: restored as %s, packed as %s", tt.opts, restored.kn.name, pa.kn.name)
		}
		want := make([]float32, len(tc.c))
		pa.Mul(tc.n, tc.b, tc.ldb, want, tc.ldc, tc.ep)
		restored.Mul(tc.n, tc.b, tc.ldb, tc.c, tc.ldc, tc.ep)
		for i := range want {
			if tc.c[i] != want[i] {
				t.Fatalf("%+v: restored product C[%d] = %v, packed %v", tt.opts, i, tc.c[i], want[i])
			}
		}
		if _, err := PackedFromValues(tt.opts, tc.m, tc.k, pa.Values()[1:]); err == nil {
			t.Errorf("%+v: PackedFromValues accepts one value less", tt.opts)
		}
	}
}

func TestMVecGrid(t *testing.T) {
	tests := []struct {
		m, n, maxChunks int
		rows, cols      int
	}{
		{1024, 196, 8, 8, 1}, // 2 of 16 panels a chunk
		{416, 196, 8, 7, 1},  // a panel a chunk, the last one half full
		{2048, 49, 8, 8, 1},
		{208, 49, 8, 4, 2},  // 4 panels, the last of 16 rows: each in halves
		{104, 196, 8, 2, 4}, // 2 panels in quarters
		{208, 392, 3, 3, 1},
		{100, 7, 8, 2, 1}, // a single tile
		{64, 49, 1, 1, 1}, // one chunk
	}
	for _, tt := range tests {
		rows, cols := mvecGrid((tt.m+mvecRows-1)/mvecRows, (tt.n+mvecCols-1)/mvecCols, tt.maxChunks)
		if rows != tt.rows || cols != tt.cols {
			t.Errorf("mvecGrid for %dx%d in %d chunks = %d x %d, want %d x %d", tt.m, tt.n, tt.maxChunks, rows, cols, tt.rows, tt.cols)
		}
	}
}

// TestMVecLeadingDimensionLimit checks that a product in the m-vector
// layout refuses leading dimensions its 32-bit row offsets cannot reach.
func TestMVecLeadingDimensionLimit(t *testing.T) {
	if bestMVec == nil {
		t.Skip("no m-vector kernels on this CPU")
	}
	a, b, c, r := make([]float32, 3), make([]float32, 6), make([]float32, 2), make([]float32, 2)
	pa := packA(bestMVec, 1, 3, a, 3)
	tests := []struct {
		name string
		call func()
	}{
		{"ldc", func() { pa.Mul(2, b, 2, c, maxMVecLD+1, Epilogue{}) }},
		{"ldr", func() { pa.Mul(2, b, 2, c, 2, Epilogue{Residual: r, LDR: maxMVecLD + 1}) }},
	}
	assertPanics(t, tests)
	pa.Mul(2, b, 2, c, maxMVecLD, Epilogue{Residual: r, LDR: maxMVecLD}) // the limit itself works
}
