package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"
)

func TestBlas32Installed(t *testing.T) {
	if _, ok := blas32.Implementation().(Implementation); !ok {
		t.Fatalf("blas32 uses %T, want gemm.Implementation", blas32.Implementation())
	}
}

// general returns a random rows x cols blas32.General with stride
// cols+pad.
func general(rng *rand.Rand, rows, cols, pad int) blas32.General {
	stride := max(cols+pad, 1)
	return blas32.General{Rows: rows, Cols: cols, Stride: stride, Data: randSlice(rng, max(rows*stride, 1))}
}

func TestBlas32GemmMatchesGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	shapes := []shape{
		{1, 1, 1, 0}, {7, 5, 3, 1}, {14, 32, 1, 0}, {15, 33, 17, 2}, {29, 61, 400, 0},
		{64, 3, 130, 3}, {3, 200, 9, 0}, {100, 100, 100, 5}, {41, 1, 77, 0}, {1, 43, 77, 1},
	}
	transposes := []blas.Transpose{blas.NoTrans, blas.Trans, blas.ConjTrans}
	scalars := []struct{ alpha, beta float32 }{{1, 0}, {1, 1}, {-0.5, 0}, {2, 1}, {0.75, -1.5}, {0, 0.5}}
	for _, s := range shapes {
		for _, tA := range transposes {
			for _, tB := range transposes {
				for _, sc := range scalars {
					name := fmt.Sprintf("%dx%dx%d pad %d tA %c tB %c alpha %v beta %v", s.m, s.n, s.k, s.pad, tA, tB, sc.alpha, sc.beta)
					ar, ac := s.m, s.k
					if tA != blas.NoTrans {
						ar, ac = s.k, s.m
					}
					br, bc := s.k, s.n
					if tB != blas.NoTrans {
						br, bc = s.n, s.k
					}
					a := general(rng, ar, ac, s.pad)
					b := general(rng, br, bc, s.pad+1)
					c := general(rng, s.m, s.n, s.pad)
					want := append([]float32(nil), c.Data...)
					gonum.Implementation{}.Sgemm(tA, tB, s.m, s.n, s.k, sc.alpha, a.Data, a.Stride, b.Data, b.Stride, sc.beta, want, c.Stride)
					blas32.Gemm(tA, tB, sc.alpha, a, b, sc.beta, c)
					// Both sum the same k products in a different order.
					tol := float64(s.k+3) * 0x1p-23 * float64(s.k) * float64(max(1, math.Abs(float64(sc.alpha))+math.Abs(float64(sc.beta))))
					for i, v := range c.Data {
						if d := math.Abs(float64(v - want[i])); !(d <= tol) {
							t.Fatalf("%s: C value %d = %v, gonum %v", name, i, v, want[i])
						}
					}
				}
			}
		}
	}
}

func TestSgemmPanicsLikeGonum(t *testing.T) {
	a, b, c := make([]float32, 12), make([]float32, 12), make([]float32, 12)
	tests := []struct {
		name string
		call func(blas.Float32)
	}{
		{"bad transpose", func(f blas.Float32) { f.Sgemm('x', blas.NoTrans, 2, 2, 2, 1, a, 2, b, 2, 0, c, 2) }},
		{"negative k", func(f blas.Float32) { f.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, -1, 1, a, 2, b, 2, 0, c, 2) }},
		{"small lda", func(f blas.Float32) { f.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, 3, 1, a, 2, b, 2, 0, c, 2) }},
		{"small ldb transposed", func(f blas.Float32) { f.Sgemm(blas.NoTrans, blas.Trans, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2) }},
		{"short A", func(f blas.Float32) { f.Sgemm(blas.NoTrans, blas.NoTrans, 4, 2, 3, 1, a[:11], 3, b, 2, 0, c, 2) }},
		{"short C", func(f blas.Float32) { f.Sgemm(blas.NoTrans, blas.NoTrans, 4, 3, 3, 1, a, 3, b, 3, 0, c[:11], 3) }},
	}
	catch := func(call func(blas.Float32), f blas.Float32) (r any) {
		defer func() { r = recover() }()
		call(f)
		return nil
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := catch(tt.call, Implementation{}), catch(tt.call, gonum.Implementation{})
			if want == nil || got != want {
				t.Errorf("panic %v, gonum panics with %v", got, want)
			}
		})
	}
}
