package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// mvecShapes are the products the m-vector layout is tested on: row
// counts around whole vectors and whole panels (1, 15..17, 63..65, 100),
// widths around and below whole tiles (1..8, 13, 14, 49, 50), k = 1, a
// k that is not a multiple of the 4-step unrolling, and the network's
// narrow products, some with strides.
var mvecShapes = []shape{
	{1, 1, 1, 0}, {1, 7, 5, 0}, {16, 7, 1, 0}, {15, 3, 9, 1}, {17, 14, 30, 0},
	{32, 6, 4, 2}, {33, 13, 7, 0}, {48, 1, 11, 0}, {63, 49, 19, 1}, {64, 8, 2, 0},
	{65, 50, 37, 3}, {100, 5, 64, 0}, {130, 2, 3, 0}, {29, 196, 23, 1}, {208, 49, 187, 0},
	{71, 392, 13, 0}, {512, 49, 205, 0},
}

func TestMVecShapes(t *testing.T) {
	if bestMVec == nil {
		t.Skip("no m-vector kernels on this CPU")
	}
	defer func(c int) { minChunkWork = c }(minChunkWork)
	minChunkWork = 1 // split even the smallest products between goroutines
	rng := rand.New(rand.NewPCG(31, 32))
	for i, s := range mvecShapes {
		for parts := range 8 {
			if raceEnabled && (i+parts)%4 != 0 {
				continue
			}
			tc := newCase(rng, s, parts)
			pa := packA(bestMVec, tc.m, tc.k, tc.a, tc.lda)
			for threads := 1; threads <= 3; threads++ {
				tc.runPacked(bestMVec, pa, threads)
				tc.check(t, fmt.Sprintf("%dx%dx%d pad %d epilogue %d threads %d", tc.m, tc.n, tc.k, s.pad, parts, threads))
			}
		}
	}
}
