package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// shape is a test problem size with the extra stride added to every
// leading dimension.
type shape struct{ m, n, k, pad int }

// networkShapes are the m x n x k products of Res2Net-50 at 224x224: 1x1
// convolutions, im2col 3x3 convolutions (k = 9*cin) and the 7x7 stem.
var networkShapes = []shape{
	{104, 3136, 64, 0}, {256, 3136, 104, 0}, {256, 3136, 64, 0},
	{208, 784, 512, 0}, {512, 784, 208, 0}, {1024, 196, 512, 0},
	{2048, 49, 1024, 0}, {512, 49, 2048, 0}, {26, 3136, 234, 0},
	{208, 49, 1872, 0}, {64, 12544, 147, 0},
}

// randSlice returns n values uniform in [-1, 1).
func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = 2*rng.Float32() - 1
	}
	return s
}

// sentinel marks C values outside the matrix, which must never change.
const sentinel = 12345

// testCase holds the operands of one Fused problem and its expected
// result with an error bound per value of C.
type testCase struct {
	m, n, k, lda, ldb, ldc int
	a, b, c                []float32
	ep                     Epilogue
	want, tol              []float32
}

// newCase builds random operands for s with the epilogue parts selected by
// the bits of parts (1 bias, 2 residual, 4 ReLU), and the expected result.
// The tolerance is the standard bound for a k-term float32 sum,
// k*eps*sum|a*b|, plus the same for the epilogue terms.
func newCase(rng *rand.Rand, s shape, parts int) *testCase {
	tc := &testCase{m: s.m, n: s.n, k: s.k, lda: max(s.k+s.pad, 1), ldb: max(s.n+s.pad, 1), ldc: max(s.n+s.pad, 1)}
	tc.a = randSlice(rng, max(s.m*tc.lda, 1))
	tc.b = randSlice(rng, max(s.k*tc.ldb, 1))
	if parts&1 != 0 {
		tc.ep.Bias = randSlice(rng, s.m)
	}
	if parts&2 != 0 {
		tc.ep.LDR = max(s.n+2*s.pad, 1)
		tc.ep.Residual = randSlice(rng, max(s.m*tc.ep.LDR, 1))
	}
	tc.ep.ReLU = parts&4 != 0
	tc.expect(tc.a, tc.b)
	tc.c = make([]float32, len(tc.want))
	return tc
}

// expect sets tc.want and tc.tol for the product of a and b, tc.a and
// tc.b or a rounding of them.
func (tc *testCase) expect(a, b []float32) {
	tc.want = make([]float32, max(tc.m*tc.ldc, 1))
	Reference(tc.m, tc.n, tc.k, a, tc.lda, b, tc.ldb, tc.want, tc.ldc, tc.ep)
	abs := func(x []float32) []float32 {
		y := make([]float32, len(x))
		for i, v := range x {
			y[i] = float32(math.Abs(float64(v)))
		}
		return y
	}
	absEp := Epilogue{Residual: tc.ep.Residual, LDR: tc.ep.LDR}
	if tc.ep.Bias != nil {
		absEp.Bias = abs(tc.ep.Bias)
	}
	if tc.ep.Residual != nil {
		absEp.Residual = abs(tc.ep.Residual)
	}
	tc.tol = make([]float32, len(tc.want))
	Reference(tc.m, tc.n, tc.k, abs(a), tc.lda, abs(b), tc.ldb, tc.tol, tc.ldc, absEp)
	eps := float32(tc.k+3) * 0x1p-23
	for i := range tc.tol {
		tc.tol[i] = tc.tol[i]*eps + 1e-30
	}
}

// check fails t with the first value of tc.c that is off by more than
// the tolerance, or that is outside the matrix and was written.
func (tc *testCase) check(t *testing.T, name string) {
	t.Helper()
	if err := tc.compare(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// compare is check without a testing.T, for other goroutines.
func (tc *testCase) compare() error {
	for i := 0; i < tc.m; i++ {
		for j := 0; j < tc.ldc && i*tc.ldc+j < len(tc.c); j++ {
			idx := i*tc.ldc + j
			got := tc.c[idx]
			if j >= tc.n {
				if got != sentinel {
					return fmt.Errorf("C[%d][%d] outside the %dx%d matrix was overwritten with %v", i, j, tc.m, tc.n, got)
				}
				continue
			}
			if d := math.Abs(float64(got - tc.want[idx])); !(d <= float64(tc.tol[idx])) {
				return fmt.Errorf("C[%d][%d] = %v, want %v (tolerance %v)", i, j, got, tc.want[idx], tc.tol[idx])
			}
		}
	}
	return nil
}

// fill sets C to garbage inside the matrix (it must be overwritten) and to
// the sentinel outside.
func (tc *testCase) fill() {
	for i := range tc.c {
		tc.c[i] = sentinel
		if j := i % tc.ldc; j < tc.n {
			tc.c[i] = float32(math.NaN())
		}
	}
}

// runKernel computes tc with kernel kn on the given number of goroutines.
func (tc *testCase) runKernel(kn *kernel, threads int) {
	tc.fill()
	runWith(&task{problem: problem{m: tc.m, n: tc.n, k: tc.k, a: tc.a, lda: tc.lda, b: tc.b, ldb: tc.ldb,
		c: tc.c, ldc: tc.ldc, alpha: 1, ep: tc.ep}}, kn, threads)
}

// oddShapes covers every size 1..70 in each dimension (the other two at
// awkward sizes), primes, and strides, so every edge case of the tiles,
// the panels and the k blocks is hit.
func oddShapes(rng *rand.Rand) []shape {
	var ss []shape
	for d := 1; d <= 70; d++ {
		ss = append(ss, shape{d, 37, 19, 0}, shape{23, d, 29, 3}, shape{15, 33, d, 1})
	}
	for _, s := range []shape{
		{1, 1, 1, 0}, {1, 1, 1, 5}, {13, 97, 1, 0}, {97, 13, 1, 2}, {131, 67, 389, 0},
		{29, 1031, 17, 7}, {61, 59, 1543, 1}, {3, 2053, 2, 0}, {1009, 5, 7, 0},
	} {
		ss = append(ss, s)
	}
	for range 40 {
		ss = append(ss, shape{1 + rng.IntN(200), 1 + rng.IntN(200), 1 + rng.IntN(800), rng.IntN(3)})
	}
	return ss
}

// loopModes are the settings of the in-place thresholds under which every
// kernel is tested, so each way block can run is covered.
var loopModes = []struct {
	name         string
	aCols, bRows int
}{
	{"default", inPlaceACols, inPlaceBRows},
	{"packed", 0, 0},
	{"A in place", 1 << 30, 0},
	{"B in place", 0, 1 << 30},
}

// forEachMode runs f for every kernel under every loop mode, with even
// the smallest problems split into chunks for the goroutines.
func forEachMode(t *testing.T, f func(t *testing.T, kn *kernel)) {
	defer func(a, b, c int) { inPlaceACols, inPlaceBRows, minChunkWork = a, b, c }(inPlaceACols, inPlaceBRows, minChunkWork)
	minChunkWork = 1
	for _, kn := range kernels {
		for _, mode := range loopModes {
			inPlaceACols, inPlaceBRows = mode.aCols, mode.bRows
			t.Run(kn.name+"/"+mode.name, func(t *testing.T) { f(t, kn) })
		}
	}
}

func TestKernelsOddShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := oddShapes(rng)
	step := 1
	if raceEnabled || testing.Short() {
		step = 7 // a sample of every kind of shape, still with every epilogue
	}
	var cases []*testCase
	for i := 0; i < len(shapes); i += step {
		cases = append(cases, newCase(rng, shapes[i], i%8))
	}
	forEachMode(t, func(t *testing.T, kn *kernel) {
		for _, tc := range cases {
			for threads := 1; threads <= 3; threads++ {
				tc.runKernel(kn, threads)
				tc.check(t, fmt.Sprintf("%dx%dx%d pad %d threads %d", tc.m, tc.n, tc.k, tc.ldc-tc.n, threads))
			}
		}
	})
}

func TestKernelsEpilogues(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	// k above every kernel's kc, so the epilogue must wait for the last
	// k block while earlier blocks accumulate.
	var cases []*testCase
	for _, s := range []shape{{45, 77, 900, 3}, {17, 100, 30, 0}} {
		for parts := 0; parts < 8; parts++ {
			cases = append(cases, newCase(rng, s, parts))
		}
	}
	forEachMode(t, func(t *testing.T, kn *kernel) {
		for i, tc := range cases {
			for threads := 1; threads <= 3; threads++ {
				tc.runKernel(kn, threads)
				tc.check(t, fmt.Sprintf("%dx%dx%d epilogue %d threads %d", tc.m, tc.n, tc.k, i%8, threads))
			}
		}
	})
}

func TestFusedNetworkShapes(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("large shapes: the reference takes minutes")
	}
	defer SetThreads(Threads())
	rng := rand.New(rand.NewPCG(5, 6))
	for i, s := range networkShapes {
		tc := newCase(rng, s, 7-i%4)
		for threads := 1; threads <= 2; threads++ {
			SetThreads(threads)
			tc.fill()
			Fused(tc.m, tc.n, tc.k, tc.a, tc.lda, tc.b, tc.ldb, tc.c, tc.ldc, tc.ep)
			tc.check(t, fmt.Sprintf("%dx%dx%d threads %d", s.m, s.n, s.k, threads))
		}
	}
}

func TestFusedZeroSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, s := range []shape{{0, 5, 3, 0}, {5, 0, 3, 0}, {4, 6, 0, 0}, {4, 6, 0, 2}} {
		for parts := 0; parts < 8; parts++ {
			tc := newCase(rng, s, parts)
			tc.fill()
			Fused(tc.m, tc.n, tc.k, tc.a, tc.lda, tc.b, tc.ldb, tc.c, tc.ldc, tc.ep)
			tc.check(t, fmt.Sprintf("%dx%dx%d epilogue %d", s.m, s.n, s.k, parts))
		}
	}
}

func TestFusedPanicsOnShortSlices(t *testing.T) {
	a, b, c := make([]float32, 6), make([]float32, 6), make([]float32, 4)
	tests := []struct {
		name string
		call func()
	}{
		{"short A", func() { Fused(2, 2, 3, a[:5], 3, b, 2, c, 2, Epilogue{}) }},
		{"short B", func() { Fused(2, 2, 3, a, 3, b[:5], 2, c, 2, Epilogue{}) }},
		{"short C", func() { Fused(2, 2, 3, a, 3, b, 2, c[:3], 2, Epilogue{}) }},
		{"small lda", func() { Fused(2, 2, 3, a, 2, b, 2, c, 2, Epilogue{}) }},
		{"negative m", func() { Fused(-1, 2, 3, a, 3, b, 2, c, 2, Epilogue{}) }},
		{"short bias", func() { Fused(2, 2, 3, a, 3, b, 2, c, 2, Epilogue{Bias: []float32{1}}) }},
		{"short residual", func() { Fused(2, 2, 3, a, 3, b, 2, c, 2, Epilogue{Residual: c[:3], LDR: 2}) }},
	}
	assertPanics(t, tests)
}

func TestFusedAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops values under the race detector")
	}
	defer SetThreads(Threads())
	rng := rand.New(rand.NewPCG(9, 10))
	// Column chunks, and row chunks sharing a packing of B.
	for _, s := range []shape{{100, 300, 200, 0}, {300, 40, 200, 0}} {
		tc := newCase(rng, s, 7)
		for _, threads := range []int{1, 2} {
			SetThreads(threads)
			allocs := testing.AllocsPerRun(20, func() {
				Fused(tc.m, tc.n, tc.k, tc.a, tc.lda, tc.b, tc.ldb, tc.c, tc.ldc, tc.ep)
			})
			if allocs != 0 {
				t.Errorf("%dx%dx%d, %d threads: %v allocations per call, want 0", s.m, s.n, s.k, threads, allocs)
			}
		}
	}
}

// TestFusedConcurrentCalls runs calls from several goroutines at once, so
// that they compete for the workers and hand each other's chunks around.
func TestFusedConcurrentCalls(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(3)
	rng := rand.New(rand.NewPCG(13, 14))
	shapes := []shape{{300, 200, 100, 1}, {400, 40, 300, 0}, {100, 600, 80, 2}, {200, 200, 200, 0}}
	cases := make([]*testCase, len(shapes))
	for i, s := range shapes {
		cases[i] = newCase(rng, s, i+4)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(cases))
	for i, tc := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				tc.fill()
				Fused(tc.m, tc.n, tc.k, tc.a, tc.lda, tc.b, tc.ldb, tc.c, tc.ldc, tc.ep)
				if err := tc.compare(); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%dx%dx%d: %v", shapes[i].m, shapes[i].n, shapes[i].k, err)
		}
	}
}

// assertPanics runs each call in a subtest and fails the ones that return.
func assertPanics(t *testing.T, tests []struct {
	name string
	call func()
}) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.call()
		})
	}
}

// TestPerCallThreads checks FusedThreads and PackedA.MulThreads with counts
// other than the process-wide one, from several goroutines at once, as two
// models in one process call them.
func TestPerCallThreads(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(1)
	rng := rand.New(rand.NewPCG(15, 16))
	shapes := []shape{{300, 200, 100, 1}, {400, 40, 300, 0}}
	var wg sync.WaitGroup
	errs := make([]error, 2*len(shapes)*3)
	for i, s := range shapes {
		for threads := range 3 { // 0 means Threads()
			for packed := range 2 {
				tc := newCase(rng, s, i+4)
				pa := PackWith(packOptions[i%len(packOptions)], tc.m, tc.k, tc.a, tc.lda)
				wg.Go(func() {
					for range 10 {
						tc.fill()
						if packed == 1 {
							pa.MulThreads(threads, tc.n, tc.b, tc.ldb, tc.c, tc.ldc, tc.ep)
						} else {
							FusedThreads(threads, tc.m, tc.n, tc.k, tc.a, tc.lda, tc.b, tc.ldb, tc.c, tc.ldc, tc.ep)
						}
						if err := tc.compare(); err != nil {
							errs[(i*3+threads)*2+packed] = fmt.Errorf("%dx%dx%d, %d threads, packed %d: %v",
								s.m, s.n, s.k, threads, packed, err)
							return
						}
					}
				})
			}
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// coverJob counts how often Parallel covers each index.
type coverJob struct {
	mu    sync.Mutex
	calls int
	seen  []int32
}

func (j *coverJob) Run(lo, hi int) {
	j.mu.Lock()
	j.calls++
	j.mu.Unlock()
	for i := lo; i < hi; i++ {
		j.seen[i]++ // each index in one range only, so no race
	}
}

func TestParallel(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 64, 1000} {
		for threads := 0; threads <= 3; threads++ {
			j := &coverJob{seen: make([]int32, n)}
			Parallel(threads, n, j)
			for i, c := range j.seen {
				if c != 1 {
					t.Fatalf("n %d threads %d: index %d covered %d times", n, threads, i, c)
				}
			}
			if n > 0 && (j.calls < 1 || j.calls > n) {
				t.Errorf("n %d threads %d: %d calls", n, threads, j.calls)
			}
		}
	}
}

func TestParallelAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops values under the race detector")
	}
	j := &coverJob{seen: make([]int32, 1000)}
	if allocs := testing.AllocsPerRun(20, func() { Parallel(2, 1000, j) }); allocs != 0 {
		t.Errorf("Parallel allocates %v times per call, want 0", allocs)
	}
}
