package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestPairPanelsBF16 checks the conversion of B for the bfloat16 m-vector
// kernels against packPairs, column by column and bit for bit, on every
// kind of special value, odd and even k, widths around whole panels and
// steps of two, strides wider than B, in one call and split into two
// ranges of rows as pairJob splits it, and that it writes nothing between
// the panels.
func TestPairPanelsBF16(t *testing.T) {
	if bestBF16MVec == nil {
		t.Skip("no AVX512_BF16 on this CPU")
	}
	rng := rand.New(rand.NewPCG(41, 42))
	for _, s := range []struct{ k, n, ldb, split int }{
		{1, 1, 1, 0}, {2, 7, 7, 0}, {3, 8, 20, 0}, {7, 49, 49, 2}, {8, 196, 200, 1},
		{33, 15, 15, 5}, {64, 14, 40, 16}, {5, 13, 32, 0}, {6, 22, 22, 1}, {9, 29, 30, 0},
	} {
		// Exactly as long as B's shape needs.
		b := specialValues(rng, (s.k-1)*s.ldb+s.n)
		rows := (s.k + 1) / 2
		panels := (s.n + mvecCols - 1) / mvecCols
		stride := rows*mvecCols + 3 // a gap after each panel, which must stay
		got := make([]float32, panels*stride)
		for i := range got {
			got[i] = sentinel
		}
		if s.split == 0 {
			bestBF16MVec.pairPanels(&got[0], &b[0], s.ldb, stride, s.k, s.n)
		} else {
			bestBF16MVec.pairPanels(&got[0], &b[0], s.ldb, stride, 2*s.split, s.n)
			bestBF16MVec.pairPanels(&got[s.split*mvecCols], &b[2*s.split*s.ldb], s.ldb, stride, s.k-2*s.split, s.n)
		}
		column, pairs := make([]float32, s.k), make([]float32, rows)
		for j := range panels * mvecCols {
			for q := range column {
				column[q] = 0
				if j < s.n {
					column[q] = b[q*s.ldb+j]
				}
			}
			packPairs(pairs, column)
			for q, w := range pairs {
				if g := got[j/mvecCols*stride+q*mvecCols+j%mvecCols]; math.Float32bits(g) != math.Float32bits(w) {
					t.Fatalf("k %d n %d ldb %d split %d: pair %d of column %d is %#08x, want %#08x",
						s.k, s.n, s.ldb, s.split, q, j, math.Float32bits(g), math.Float32bits(w))
				}
			}
		}
		for p := range panels {
			for i := rows * mvecCols; i < stride; i++ {
				if got[p*stride+i] != sentinel {
					t.Fatalf("k %d n %d: value %d after panel %d was overwritten", s.k, s.n, i, p)
				}
			}
		}
	}
}

// TestBF16MVecShapes is TestMVecShapes in BF16: the m-vector kernels on
// pairs against the reference product of the rounded operands, with every
// epilogue, on 1 to 3 goroutines.
func TestBF16MVecShapes(t *testing.T) {
	testMVec(t, bestBF16MVec, mvecCases(rand.New(rand.NewPCG(43, 44)), bf16Case))
}

// TestBF16MVecPanels checks the packed m-vector layout on pairs against
// its definition (packMVec on pairs) for m around whole panels and odd k.
func TestBF16MVecPanels(t *testing.T) {
	if bestBF16MVec == nil {
		t.Skip("no AVX512_BF16 on this CPU")
	}
	rng := rand.New(rand.NewPCG(45, 46))
	for _, s := range []struct{ m, k int }{{1, 1}, {17, 3}, {64, 2}, {65, 9}, {130, 6}} {
		a := specialValues(rng, s.m*s.k)
		p := packA(bestBF16MVec, s.m, s.k, a, s.k)
		steps := (s.k + 1) / 2
		if len(p.data) != roundUp(s.m, mvecGroup)*steps {
			t.Fatalf("%dx%d: %d packed values, want %d", s.m, s.k, len(p.data), roundUp(s.m, mvecGroup)*steps)
		}
		pairs := make([]float32, steps)
		for i := range roundUp(s.m, mvecGroup) {
			clear(pairs)
			if i < s.m {
				packPairs(pairs, a[i*s.k:(i+1)*s.k])
			}
			i0 := i / mvecRows * mvecRows
			width := min(mvecRows, p.rows-i0)
			for q, w := range pairs {
				if g := p.data[i0*steps+q*width+i-i0]; math.Float32bits(g) != math.Float32bits(w) {
					t.Fatalf("%dx%d: row %d pair %d is %#08x, want %#08x", s.m, s.k, i, q, math.Float32bits(g), math.Float32bits(w))
				}
			}
		}
	}
}

// TestBF16MVecConcurrent runs products sharing one packed matrix on
// several goroutines at once, each on 2 threads: the pairs of each call's
// B live in its own workspace.
func TestBF16MVecConcurrent(t *testing.T) {
	if bestBF16MVec == nil {
		t.Skip("no AVX512_BF16 on this CPU")
	}
	rng := rand.New(rand.NewPCG(47, 48))
	base := bf16Case(rng, shape{130, 49, 75, 0}, 7)
	pa := PackWith(PackOptions{Precision: BF16, Columns: 49}, base.m, base.k, base.a, base.lda)
	done := make(chan error)
	const goroutines = 4
	for g := range goroutines {
		go func() {
			tc := bf16Case(rand.New(rand.NewPCG(49, uint64(g))), shape{130, 49 + 7*g, 75, 0}, g)
			tc.a = base.a
			tc.expect(roundAll(base.a), roundAll(tc.b))
			var err error
			for range 20 {
				tc.fill()
				pa.MulThreads(2, tc.n, tc.b, tc.ldb, tc.c, tc.ldc, tc.ep)
				if err = tc.compare(); err != nil {
					err = fmt.Errorf("goroutine %d: %w", g, err)
					break
				}
			}
			done <- err
		}()
	}
	for range goroutines {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
