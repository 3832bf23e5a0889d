package gemm

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// cpuTime returns the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchShapes runs f on every network shape at each number of goroutines
// and reports GFLOP/s (2 flops per multiply-add). Both Threads and
// GOMAXPROCS are set, so that gonum, which sizes its pool by GOMAXPROCS,
// gets the same cores.
func benchShapes(b *testing.B, threads []int, f func(s shape, a, bm, c []float32)) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, s := range networkShapes {
		a := randSlice(rng, s.m*s.k)
		bm := randSlice(rng, s.k*s.n)
		c := make([]float32, s.m*s.n)
		for _, t := range threads {
			b.Run(fmt.Sprintf("%dx%dx%d/t%d", s.m, s.n, s.k, t), func(b *testing.B) {
				defer SetThreads(Threads())
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(t))
				SetThreads(t)
				cpu := cpuTime()
				for b.Loop() {
					f(s, a, bm, c)
				}
				flops := 2 * float64(s.m*s.n*s.k) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				// Per CPU second: on a shared machine, less noisy than wall time.
				b.ReportMetric(flops/(cpuTime()-cpu).Seconds()/1e9, "GFLOP/cpu-s")
			})
		}
	}
}

// BenchmarkFused is the public entry point, with the kernels this CPU
// selects, at one and two goroutines.
func BenchmarkFused(b *testing.B) {
	benchShapes(b, []int{1, 2}, func(s shape, a, bm, c []float32) {
		Fused(s.m, s.n, s.k, a, s.k, bm, s.n, c, s.n, Epilogue{})
	})
}

// BenchmarkKernel forces each kernel this CPU has on every shape, on one
// goroutine, to compare them.
func BenchmarkKernel(b *testing.B) {
	for _, kn := range kernels {
		b.Run(kn.name, func(b *testing.B) {
			benchShapes(b, []int{1}, func(s shape, a, bm, c []float32) {
				t := task{problem: problem{m: s.m, n: s.n, k: s.k, a: a, lda: s.k, b: bm, ldb: s.n, c: c, ldc: s.n, alpha: 1}}
				runWith(&t, kn, 1)
			})
		})
	}
}

// BenchmarkGonum is gonum's own Sgemm on the same shapes, for comparison.
func BenchmarkGonum(b *testing.B) {
	benchShapes(b, []int{1, 2}, func(s shape, a, bm, c []float32) {
		gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, s.m, s.n, s.k, 1, a, s.k, bm, s.n, 0, c, s.n)
	})
}

// BenchmarkPacked is PackedA.Mul on the network shapes, A packed outside
// the timing, to compare with BenchmarkFused, in each precision this CPU
// runs, and in the m-vector layout too (fp32-mvec and bf16-mvec, whatever
// the width), to compare the two layouts.
func BenchmarkPacked(b *testing.B) {
	type layout struct {
		name string
		pack func(m, k int, a []float32) *PackedA
	}
	layouts := []layout{{FP32.String(), func(m, k int, a []float32) *PackedA { return PackAPrecision(FP32, m, k, a, k) }}}
	if HasBF16() {
		layouts = append(layouts, layout{BF16.String(), func(m, k int, a []float32) *PackedA { return PackAPrecision(BF16, m, k, a, k) }})
	}
	if bestMVec != nil {
		layouts = append(layouts, layout{"fp32-mvec", func(m, k int, a []float32) *PackedA { return packA(bestMVec, m, k, a, k) }})
	}
	if bestBF16MVec != nil {
		layouts = append(layouts, layout{"bf16-mvec", func(m, k int, a []float32) *PackedA { return packA(bestBF16MVec, m, k, a, k) }})
	}
	for _, l := range layouts {
		b.Run(l.name, func(b *testing.B) {
			packed := map[shape]*PackedA{}
			benchShapes(b, []int{1, 2}, func(s shape, a, bm, c []float32) {
				pa := packed[s]
				if pa == nil {
					pa = l.pack(s.m, s.k, a)
					packed[s] = pa
				}
				pa.Mul(s.n, bm, s.n, c, s.n, Epilogue{})
			})
		})
	}
}

// BenchmarkWinogradBound weighs Winograd F(2x2,3x3) for the stride-1 3x3
// branch convs at batch 1: the im2col product of each stage (c x hw^2 x
// 9c) against the 16 element-wise products Winograd would run instead
// (c x tiles x c, tiles = ceil(hw/2)^2), without its input and output
// transforms. Winograd can only pay where the second is well below the
// first. Run with: go test -run '^$' -bench WinogradBound ./pkg/ops/gemm/
func BenchmarkWinogradBound(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, s := range []struct{ c, hw int }{{26, 56}, {52, 28}, {104, 14}, {208, 7}} {
		n, k := s.hw*s.hw, 9*s.c
		tiles := (s.hw + 1) / 2 * ((s.hw + 1) / 2)
		b.Run(fmt.Sprintf("c=%d/hw=%d/im2col", s.c, s.hw), func(b *testing.B) {
			pa := PackA(s.c, k, randSlice(rng, s.c*k), k)
			bm, c := randSlice(rng, k*n), make([]float32, s.c*n)
			for b.Loop() {
				pa.MulThreads(1, n, bm, n, c, n, Epilogue{})
			}
		})
		b.Run(fmt.Sprintf("c=%d/hw=%d/winograd16", s.c, s.hw), func(b *testing.B) {
			var pa [16]*PackedA
			for i := range pa {
				pa[i] = PackA(s.c, s.c, randSlice(rng, s.c*s.c), s.c)
			}
			bm, c := randSlice(rng, 16*s.c*tiles), make([]float32, 16*s.c*tiles)
			for b.Loop() {
				for i, p := range pa {
					p.MulThreads(1, tiles, bm[i*s.c*tiles:], tiles, c[i*s.c*tiles:], tiles, Epilogue{})
				}
			}
		})
	}
}

// BenchmarkBF16Layouts compares the two BF16 layouts on each stage's
// products (the first 1x1, a 3x3 branch, the last 1x1) at the widths of
// batch 1 and batch 8, to choose the widths that get the m-vector layout.
// Run with: go test -run '^$' -bench BF16Layouts -benchtime 50x ./pkg/ops/gemm/
func BenchmarkBF16Layouts(b *testing.B) {
	if bestBF16MVec == nil {
		b.Skip("no AVX512_BF16 on this CPU")
	}
	rng := rand.New(rand.NewPCG(5, 5))
	stages := []struct{ hw, width, in, out int }{{28, 208, 512, 512}, {14, 416, 1024, 1024}, {7, 832, 2048, 2048}}
	for _, st := range stages {
		for _, batch := range []int{1, 8} {
			n := batch * st.hw * st.hw
			if n > 2000 {
				continue // far wider than either layout's crossover
			}
			for _, mk := range [][2]int{{st.width, st.in}, {st.width / 4, 9 * st.width / 4}, {st.out, st.width}} {
				m, k := mk[0], mk[1]
				a, bm, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
				for _, kn := range []*kernel{bestBF16, bestBF16MVec} {
					pa := packA(kn, m, k, a, k)
					for _, t := range []int{1, 2} {
						b.Run(fmt.Sprintf("%dx%dx%d/%s/t%d", m, n, k, kn.name, t), func(b *testing.B) {
							for b.Loop() {
								pa.MulThreads(t, n, bm, n, c, n, Epilogue{})
							}
							b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
						})
					}
				}
			}
		}
	}
}
