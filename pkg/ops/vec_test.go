package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestVec compares maxRows3, sumRows3 and Add, vectorised where the CPU
// allows, with their plain definitions on every length around the
// vectors' 16 lanes, with NaNs, infinities and signed zeros in any row.
func TestVec(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1))}
	for n := 0; n <= 50; n++ {
		rows := make([][]float32, 3)
		for r := range rows {
			rows[r] = make([]float32, n)
			for i := range rows[r] {
				rows[r][i] = 2*rng.Float32() - 1
				if rng.IntN(6) == 0 {
					rows[r][i] = specials[rng.IntN(len(specials))]
				}
			}
		}
		for _, op := range []struct {
			name      string
			fast, ref func(dst, a, b, c []float32)
		}{
			{"max", maxRows3, maxRows3Go},
			{"sum", sumRows3, sumRows3Go},
			{"add", func(dst, a, b, _ []float32) { Add(dst, a, b) }, func(dst, a, b, _ []float32) { addGo(dst, a, b) }},
		} {
			got, want := make([]float32, n+1), make([]float32, n+1)
			got[n], want[n] = 7, 7 // past the rows: never written
			op.fast(got, rows[0], rows[1], rows[2])
			op.ref(want, rows[0], rows[1], rows[2])
			for i := range got {
				g, w := got[i], want[i]
				if g != w && !(g != g && w != w) {
					t.Errorf("%s n=%d [%d]: %v, want %v (rows %v %v %v)", op.name, n, i, g, w,
						at(rows[0], i), at(rows[1], i), at(rows[2], i))
				}
			}
		}
	}
}

// at returns row[i] as text, or "-" past its end.
func at(row []float32, i int) string {
	if i < len(row) {
		return fmt.Sprint(row[i])
	}
	return "-"
}

// BenchmarkAdd is a stage-1 cascade add (26 x 56 x 56), vectorised and
// plain.
func BenchmarkAdd(b *testing.B) {
	n := 26 * 56 * 56
	a, c, dst := make([]float32, n), make([]float32, n), make([]float32, n)
	b.Run("vec", func(b *testing.B) {
		for b.Loop() {
			Add(dst, a, c)
		}
	})
	b.Run("go", func(b *testing.B) {
		for b.Loop() {
			addGo(dst, a, c)
		}
	})
}
