package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// runPacked computes tc from A packed for kernel kn, on the given number
// of goroutines.
func (tc *testCase) runPacked(kn *kernel, pa *PackedA, threads int) {
	tc.fill()
	runWith(&task{problem: problem{m: tc.m, n: tc.n, k: tc.k, packed: pa, b: tc.b, ldb: tc.ldb,
		c: tc.c, ldc: tc.ldc, alpha: 1, ep: tc.ep}}, kn, threads)
}

func TestPackedOddShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	shapes := oddShapes(rng)
	step := 1
	if raceEnabled || testing.Short() {
		step = 7
	}
	var cases []*testCase
	for i := 0; i < len(shapes); i += step {
		cases = append(cases, newCase(rng, shapes[i], i%8))
	}
	// k above every kernel's kc, so that there are several packed slices.
	for parts := range 8 {
		cases = append(cases, newCase(rng, shape{45, 77, 900, 3}, parts))
	}
	forEachMode(t, func(t *testing.T, kn *kernel) {
		for _, tc := range cases {
			pa := packA(kn, tc.m, tc.k, tc.a, tc.lda)
			for threads := 1; threads <= 3; threads++ {
				tc.runPacked(kn, pa, threads)
				tc.check(t, fmt.Sprintf("%dx%dx%d pad %d threads %d", tc.m, tc.n, tc.k, tc.ldc-tc.n, threads))
			}
		}
	})
	t.Run("m-vector layout", func(t *testing.T) { testMVec(t, bestMVec, cases) })
}

// packOptions are the options the public packing tests pack with: the
// default layout, and one for narrow products (the m-vector layout where
// the CPU has it).
var packOptions = []PackOptions{{}, {Columns: 49}}

func TestPackedMulNetworkShapes(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("large shapes: the reference takes minutes")
	}
	defer SetThreads(Threads())
	rng := rand.New(rand.NewPCG(23, 24))
	for i, s := range networkShapes {
		tc := newCase(rng, s, 7-i%4)
		for _, opts := range packOptions {
			pa := PackWith(opts, tc.m, tc.k, tc.a, tc.lda)
			for threads := 1; threads <= 2; threads++ {
				SetThreads(threads)
				tc.fill()
				pa.Mul(tc.n, tc.b, tc.ldb, tc.c, tc.ldc, tc.ep)
				tc.check(t, fmt.Sprintf("%dx%dx%d %s threads %d", s.m, s.n, s.k, pa.kn.name, threads))
			}
		}
	}
}

func TestPackedMulZeroSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, s := range []shape{{0, 5, 3, 0}, {5, 0, 3, 0}, {4, 6, 0, 0}, {4, 6, 0, 2}} {
		for parts := range 8 {
			tc := newCase(rng, s, parts)
			for _, opts := range packOptions {
				pa := PackWith(opts, tc.m, tc.k, tc.a, tc.lda)
				tc.fill()
				pa.Mul(tc.n, tc.b, tc.ldb, tc.c, tc.ldc, tc.ep)
				tc.check(t, fmt.Sprintf("%dx%dx%d %s epilogue %d", s.m, s.n, s.k, pa.kn.name, parts))
			}
		}
	}
}

func TestPackedMulPanicsOnShortSlices(t *testing.T) {
	a, b, c := make([]float32, 6), make([]float32, 6), make([]float32, 4)
	pa := PackA(2, 3, a, 3)
	tests := []struct {
		name string
		call func()
	}{
		{"short A", func() { PackA(2, 3, a[:5], 3) }},
		{"short B", func() { pa.Mul(2, b[:5], 2, c, 2, Epilogue{}) }},
		{"short C", func() { pa.Mul(2, b, 2, c[:3], 2, Epilogue{}) }},
		{"short bias", func() { pa.Mul(2, b, 2, c, 2, Epilogue{Bias: []float32{1}}) }},
		{"short residual", func() { pa.Mul(2, b, 2, c, 2, Epilogue{Residual: c[:3], LDR: 2}) }},
	}
	assertPanics(t, tests)
}

func TestPackedMulAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops values under the race detector")
	}
	defer SetThreads(Threads())
	rng := rand.New(rand.NewPCG(27, 28))
	for _, s := range []shape{{100, 300, 200, 0}, {300, 40, 200, 0}, {300, 41, 200, 0}} {
		tc := newCase(rng, s, 7)
		// BF16 in the m-vector layout takes a workspace for B's pairs.
		for _, opts := range append(packOptions, PackOptions{Precision: BF16, Columns: 49}) {
			pa := PackWith(opts, tc.m, tc.k, tc.a, tc.lda)
			for _, threads := range []int{1, 2} {
				SetThreads(threads)
				allocs := testing.AllocsPerRun(20, func() {
					pa.Mul(tc.n, tc.b, tc.ldb, tc.c, tc.ldc, tc.ep)
				})
				if allocs != 0 {
					t.Errorf("%dx%dx%d %s, %d threads: %v allocations per call, want 0", s.m, s.n, s.k, pa.kn.name, threads, allocs)
				}
			}
		}
	}
}
