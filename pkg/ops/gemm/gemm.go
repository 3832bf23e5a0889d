// Package gemm is the single-precision matrix multiply the network runs on.
//
// Fused computes C = A*B for row-major matrices and applies the layer's
// epilogue (bias, residual, ReLU) while each tile of C is still in
// registers, so C is written once. The implementation follows the BLIS
// design: A and B are packed into panels sized for the caches and a
// register-blocked micro-kernel (AVX-512 or AVX2 assembly on amd64, Go
// elsewhere) computes one tile of C at a time. A matrix used for many
// products, such as a layer's weights, can be packed once with PackA and
// multiplied with PackedA.Mul. PackWith also takes the typical width of
// the products: narrow ones (Res2Net's 7x7 and 14x14 layers) get a layout
// whose kernels vectorise along m instead of n, so that their vectors are
// full however few columns the product has.
//
// Each call uses up to Threads() goroutines, a process-wide default set with
// SetThreads. FusedThreads and PackedA.MulThreads take the count per call
// instead, so that independent users in one process (two models, say) do
// not change each other's.
//
// The package also installs Implementation as gonum's blas32 backend, so
// code written against gonum.org/v1/gonum/blas/blas32 gets the same speed.
package gemm

//go:generate go run gen_kernels.go -o kernels_amd64.s

import (
	"fmt"
	"runtime"
	"sync/atomic"
)

// Epilogue is the work fused into the output step of Fused, applied in
// this order: C += Bias[i] (per row), C += Residual, C = max(C, 0).
type Epilogue struct {
	Bias     []float32 // length m, or nil
	Residual []float32 // shaped like C with leading dimension LDR, or nil
	LDR      int
	ReLU     bool
}

var threads atomic.Int64

func init() { threads.Store(int64(runtime.GOMAXPROCS(0))) }

// SetThreads sets how many goroutines one call that does not give its own
// count (Fused, PackedA.Mul, Sgemm) may use (at least 1).
func SetThreads(n int) {
	threads.Store(int64(max(n, 1)))
}

// Threads returns the number of goroutines one call that does not give its
// own count may use. It starts as GOMAXPROCS.
func Threads() int { return int(threads.Load()) }

// Fused computes C = A*B followed by ep, where A is m x k (leading dimension
// lda), B is k x n (ldb) and C is m x n (ldc), all row-major. C is
// overwritten, not accumulated into, and must not overlap A, B or the
// residual. It uses up to Threads() goroutines. It panics if a dimension
// is negative or a slice is too short for its shape, like gonum's BLAS.
func Fused(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
	FusedThreads(Threads(), m, n, k, a, lda, b, ldb, c, ldc, ep)
}

// FusedThreads is Fused on up to threads goroutines instead of Threads();
// threads < 1 means Threads().
func FusedThreads(threads, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
	checkMatrix("A", m, k, a, lda)
	mul(problem{
		m: m, n: n, k: k,
		a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
		alpha: 1, ep: ep, threads: threads,
	})
}

// mul is the common body of Fused and PackedA.Mul, after A is checked (or
// packed): it checks B, C and the epilogue, and handles the empty shapes
// that solve does not.
func mul(p problem) {
	checkMatrix("B", p.k, p.n, p.b, p.ldb)
	checkMatrix("C", p.m, p.n, p.c, p.ldc)
	checkEpilogue(p.m, p.n, p.ep)
	if p.m == 0 || p.n == 0 {
		return
	}
	if p.k == 0 {
		epilogueOnly(p.m, p.n, p.c, p.ldc, p.ep)
		return
	}
	solve(p)
}

// checkMatrix panics unless s can hold a rows x cols row-major matrix with
// leading dimension ld.
func checkMatrix(name string, rows, cols int, s []float32, ld int) {
	switch {
	case rows < 0 || cols < 0:
		panic(fmt.Sprintf("gemm: %s has negative shape %dx%d", name, rows, cols))
	case ld < max(cols, 1):
		panic(fmt.Sprintf("gemm: %s leading dimension %d is less than its width %d", name, ld, cols))
	case rows > 0 && cols > 0 && len(s) < (rows-1)*ld+cols:
		panic(fmt.Sprintf("gemm: %s has %d values, need %d for %dx%d with leading dimension %d",
			name, len(s), (rows-1)*ld+cols, rows, cols, ld))
	}
}

// Kernel names the micro-kernel Fused runs on this CPU, as its instruction
// set and tile shape (rows x columns of C), such as "avx512-13x32",
// "avx2-6x16" or "go-4x4", for version output and benchmark reports.
func Kernel() string { return best.name }
