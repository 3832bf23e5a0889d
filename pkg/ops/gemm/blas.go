package gemm

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"
)

// Implementation is gonum's native BLAS with Sgemm replaced by this
// package's kernels. It is installed as the blas32 backend when the
// package is imported, so blas32.Gemm runs at full speed.
type Implementation struct {
	gonum.Implementation
}

var _ blas.Float32 = Implementation{}

func init() { blas32.Use(Implementation{}) }

// Sgemm computes C = alpha * op(A) * op(B) + beta * C, where op(X) is X or
// its transpose as tA and tB say, op(A) is m x k, op(B) is k x n and all
// matrices are row-major, exactly as gonum's Sgemm does. It uses up to
// Threads() goroutines. Invalid arguments panic with gonum's messages, and
// the degenerate cases that multiply nothing are left to gonum.
func (impl Implementation) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if !sgemmArgsValid(tA, tB, m, n, k, a, lda, b, ldb, c, ldc) || m == 0 || n == 0 || k == 0 || alpha == 0 {
		impl.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if beta != 0 && beta != 1 {
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				row[j] *= beta
			}
		}
	}
	solve(problem{
		m: m, n: n, k: k,
		a: a, lda: lda, transA: tA != blas.NoTrans,
		b: b, ldb: ldb, transB: tB != blas.NoTrans,
		c: c, ldc: ldc,
		alpha: alpha, accumulate: beta != 0,
	})
}

// sgemmArgsValid reports whether gonum's Sgemm would accept the arguments.
func sgemmArgsValid(tA, tB blas.Transpose, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) bool {
	validT := func(t blas.Transpose) bool {
		return t == blas.NoTrans || t == blas.Trans || t == blas.ConjTrans
	}
	if !validT(tA) || !validT(tB) || m < 0 || n < 0 || k < 0 || ldc < max(1, n) {
		return false
	}
	// Stored shapes of A and B.
	ar, ac := m, k
	if tA != blas.NoTrans {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB != blas.NoTrans {
		br, bc = n, k
	}
	if lda < max(1, ac) || ldb < max(1, bc) {
		return false
	}
	if m == 0 || n == 0 {
		return true
	}
	return len(a) >= (ar-1)*lda+ac && len(b) >= (br-1)*ldb+bc && len(c) >= (m-1)*ldc+n
}
