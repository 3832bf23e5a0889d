package checkpoint

import (
	"math"
	"testing"
)

func TestAllFinite(t *testing.T) {
	specials := []float32{
		float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(0x7f800001), math.Float32frombits(0xffffffff), // NaN payloads
	}
	finite := []float32{0, -0, 1, -1, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32,
		math.Float32frombits(0x7f7fffff), math.Float32frombits(0x807fffff)}
	// Every length and position around the 4-word unrolling, on aligned
	// and misaligned starts.
	buf := make([]float32, 40)
	for start := range 2 {
		for n := range 20 {
			data := buf[start : start+n]
			for i := range data {
				data[i] = finite[i%len(finite)]
			}
			if !allFinite(data) {
				t.Fatalf("start %d, %d finite values: reported non-finite", start, n)
			}
			for pos := range n {
				for _, v := range specials {
					data[pos] = v
					if allFinite(data) {
						t.Fatalf("start %d, n %d: %v at %d not found", start, n, v, pos)
					}
					if nan, inf := countNonFinite(data); nan+inf != 1 || (nan == 1) != math.IsNaN(float64(v)) {
						t.Fatalf("countNonFinite(%v) = %d NaN, %d Inf", v, nan, inf)
					}
				}
				data[pos] = finite[pos%len(finite)]
			}
		}
	}
}

// BenchmarkAllFinite measures the check on 25.6M values, Res2Net-50's
// parameter count.
func BenchmarkAllFinite(b *testing.B) {
	data := make([]float32, 25_600_000)
	for i := range data {
		data[i] = float32(i%1000) / 7
	}
	b.SetBytes(int64(4 * len(data)))
	for b.Loop() {
		if !allFinite(data) {
			b.Fatal("non-finite")
		}
	}
}
