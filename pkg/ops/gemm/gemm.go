// Package gemm is the single-precision matrix multiply the network runs on.
//
// Fused computes C = A*B for row-major matrices and applies the layer's
// epilogue (bias, residual, ReLU) while C is still in cache.
package gemm

import "runtime"

// Epilogue is the work fused into the output step of Fused, applied in
// this order: C += Bias[i] (per row), C += Residual, C = max(C, 0).
type Epilogue struct {
	Bias     []float32 // length m, or nil
	Residual []float32 // shaped like C with leading dimension LDR, or nil
	LDR      int
	ReLU     bool
}

var threads = runtime.GOMAXPROCS(0)

// SetThreads sets how many goroutines one Fused call may use (at least 1).
func SetThreads(n int) {
	if n < 1 {
		n = 1
	}
	threads = n
}

// Threads returns the number of goroutines one Fused call may use.
func Threads() int { return threads }

// Fused computes C = A*B followed by ep, where A is m x k (leading dimension
// lda), B is k x n (ldb) and C is m x n (ldc), all row-major. C is
// overwritten, not accumulated into.
func Fused(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		for j := range row {
			row[j] = 0
		}
		for p := 0; p < k; p++ {
			av := a[i*lda+p]
			brow := b[p*ldb : p*ldb+n]
			for j, bv := range brow {
				row[j] += av * bv
			}
		}
		applyEpilogue(row, i, ep)
	}
}

func applyEpilogue(row []float32, i int, ep Epilogue) {
	if ep.Bias != nil {
		bi := ep.Bias[i]
		for j := range row {
			row[j] += bi
		}
	}
	if ep.Residual != nil {
		res := ep.Residual[i*ep.LDR : i*ep.LDR+len(row)]
		for j := range row {
			row[j] += res[j]
		}
	}
	if ep.ReLU {
		for j, v := range row {
			if v < 0 {
				row[j] = 0
			}
		}
	}
}
