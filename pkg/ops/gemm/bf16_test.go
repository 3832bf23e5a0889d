package gemm

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestRoundBF16(t *testing.T) {
	f := math.Float32frombits
	tests := []struct {
		name string
		in   uint32
		want uint32 // bits of the result
	}{
		{"one", 0x3f800000, 0x3f800000},
		{"tie to even, down", 0x3f808000, 0x3f800000},
		{"tie to even, up", 0x3f818000, 0x3f820000},
		{"above the tie", 0x3f808001, 0x3f810000},
		{"below the tie", 0x3f807fff, 0x3f800000},
		{"negative", 0xbf808001, 0xbf810000},
		{"carry into the exponent", 0x3fffffff, 0x40000000},
		{"largest float32 overflows", 0x7f7fffff, 0x7f800000},
		{"infinity", 0xff800000, 0xff800000},
		{"quiet NaN", 0x7fc00001, 0x7fc00000},
		{"signalling NaN stays NaN", 0x7f800001, 0x7fc00000},
		{"negative zero", 0x80000000, 0x80000000},
		{"subnormal to zero", 0x007fffff, 0x00000000},
		{"negative subnormal", 0x80000001, 0x80000000},
		{"smallest normal", 0x00800000, 0x00800000},
	}
	for _, tc := range tests {
		got := math.Float32bits(RoundBF16(f(tc.in)))
		if got != tc.want {
			t.Errorf("%s: RoundBF16(%#08x) = %#08x, want %#08x", tc.name, tc.in, got, tc.want)
		}
	}
}

// specialValues returns n values mixing ordinary numbers with every kind
// of value rounding treats apart: ties, subnormals, infinities, NaNs.
func specialValues(rng *rand.Rand, n int) []float32 {
	specials := []uint32{0x3f808000, 0x3f818000, 0x3f807fff, 0x3fffffff, 0x7f7fffff, 0xff800000,
		0x7fc00001, 0x7f800001, 0x80000000, 0x007fffff, 0x80000001, 0x00800000}
	s := randSlice(rng, n)
	for i := range s {
		if rng.IntN(3) == 0 {
			s[i] = math.Float32frombits(specials[rng.IntN(len(specials))])
		}
	}
	return s
}

// TestPackBBF16 checks the assembly packers against packPairs, value for
// value, on every panel layout.
func TestPackBBF16(t *testing.T) {
	if bestBF16 == nil {
		t.Skip("no AVX512_BF16 on this CPU")
	}
	rng := rand.New(rand.NewPCG(31, 32))
	for _, kn := range []*kernel{bestBF16, bestBF16.small} {
		for _, s := range []struct{ kc, cols, ldb int }{
			{1, 1, 1}, {2, 5, 7}, {7, kn.nr, kn.nr}, {8, 3*kn.nr + 17, 3*kn.nr + 20}, {33, 2*kn.nr + kn.nr/2, 200},
			{64, kn.nr - 1, kn.nr}, {5, kn.nr / 2, kn.nr},
		} {
			b := specialValues(rng, s.kc*s.ldb)
			p := problem{b: b, ldb: s.ldb}
			got := make([]float32, (s.cols/kn.nr+1)*kn.nr*kn.rows(s.kc))
			half := p.packBlock(kn, got, 0, s.kc, 0, s.cols)
			want := make([]float32, len(got))
			full, rem := s.cols/kn.nr, s.cols%kn.nr
			width := kn.nr
			for f := 0; f <= full; f++ {
				cols := kn.nr
				if f == full {
					cols = rem
					if half {
						width = kn.nr / 2
					}
				}
				panel := want[f*kn.nr*kn.rows(s.kc):]
				column := make([]float32, s.kc)
				for c := 0; c < cols; c++ {
					for q := range column {
						column[q] = b[q*s.ldb+f*kn.nr+c]
					}
					pairs := make([]float32, kn.rows(s.kc))
					packPairs(pairs, column)
					for q, v := range pairs {
						panel[q*width+c] = v
					}
				}
			}
			for i := range got {
				if g, w := math.Float32bits(got[i]), math.Float32bits(want[i]); g != w {
					t.Fatalf("%s kc %d cols %d: packed value %d is %#08x, want %#08x", kn.name, s.kc, s.cols, i, g, w)
				}
			}
		}
	}
}

// bf16Case is newCase for a product in BF16: the expected result is the
// product of the rounded operands.
func bf16Case(rng *rand.Rand, s shape, parts int) *testCase {
	tc := newCase(rng, s, parts)
	tc.expect(roundAll(tc.a), roundAll(tc.b))
	return tc
}

// roundAll returns the values of s rounded to bfloat16.
func roundAll(s []float32) []float32 {
	r := make([]float32, len(s))
	for i, v := range s {
		r[i] = RoundBF16(v)
	}
	return r
}

func TestBF16OddShapes(t *testing.T) {
	if bestBF16 == nil {
		t.Skip("no AVX512_BF16 on this CPU")
	}
	defer func(w int) { minChunkWork = w }(minChunkWork)
	minChunkWork = 1
	rng := rand.New(rand.NewPCG(33, 34))
	shapes := oddShapes(rng)
	// k above the kernel's kc, odd and even, so that there are several
	// slices and an odd last pair.
	shapes = append(shapes, shape{45, 77, 1601, 3}, shape{30, 50, 1600, 0}, shape{27, 200, 1537, 1})
	step := 1
	if raceEnabled || testing.Short() {
		step = 5
	}
	kns := []*kernel{bestBF16}
	if bestBF16MVec != nil {
		kns = append(kns, bestBF16MVec)
	}
	for i := 0; i < len(shapes); i += step {
		tc := bf16Case(rng, shapes[i], i%8)
		for _, kn := range kns {
			pa := packA(kn, tc.m, tc.k, tc.a, tc.lda)
			for threads := 1; threads <= 3; threads++ {
				tc.runPacked(kn, pa, threads)
				tc.check(t, fmt.Sprintf("%s %dx%dx%d pad %d epilogue %d threads %d", kn.name, tc.m, tc.n, tc.k, tc.ldc-tc.n, i%8, threads))
			}
		}
	}
}

func TestBF16NetworkShapes(t *testing.T) {
	if bestBF16 == nil {
		t.Skip("no AVX512_BF16 on this CPU")
	}
	if testing.Short() || raceEnabled {
		t.Skip("large shapes: the reference takes minutes")
	}
	rng := rand.New(rand.NewPCG(35, 36))
	for i, s := range networkShapes {
		tc := bf16Case(rng, s, 7-i%4)
		// The default layout, and the one the network packs the shape in
		// (the m-vector layout for the narrow ones).
		for _, opts := range []PackOptions{{Precision: BF16}, {Precision: BF16, Columns: s.n}} {
			pa := PackWith(opts, tc.m, tc.k, tc.a, tc.lda)
			if pa.Precision() != BF16 {
				t.Fatalf("PackWith(%+v) gave %v", opts, pa.Precision())
			}
			if opts.Columns != 0 && pa.kn == bestBF16 {
				continue // tested above
			}
			for threads := 1; threads <= 2; threads++ {
				tc.fill()
				pa.MulThreads(threads, tc.n, tc.b, tc.ldb, tc.c, tc.ldc, tc.ep)
				tc.check(t, fmt.Sprintf("%s %dx%dx%d threads %d", pa.kn.name, s.m, s.n, s.k, threads))
			}
		}
	}
}

// TestBF16CloseToFP32 bounds what BF16 costs in accuracy on a network
// shape: every value within 2^-7 of the float32 product's scale.
func TestBF16CloseToFP32(t *testing.T) {
	if bestBF16 == nil {
		t.Skip("no AVX512_BF16 on this CPU")
	}
	rng := rand.New(rand.NewPCG(37, 38))
	tc := newCase(rng, shape{104, 300, 576, 0}, 0)
	PackAPrecision(BF16, tc.m, tc.k, tc.a, tc.lda).Mul(tc.n, tc.b, tc.ldb, tc.c, tc.ldc, tc.ep)
	for i := range tc.want {
		// tol is k*2^-23*sum|a*b|: sum|a*b| is the scale of the error.
		scale := float64(tc.tol[i]) / (float64(tc.k+3) * 0x1p-23)
		if d := math.Abs(float64(tc.c[i] - tc.want[i])); d > scale*0x1p-7 {
			t.Fatalf("C[%d] = %v in BF16, %v in float32: off by %.3g of its scale %.3g", i, tc.c[i], tc.want[i], d/scale, scale)
		}
	}
}

func TestParsePrecision(t *testing.T) {
	for _, p := range []Precision{FP32, BF16} {
		got, err := ParsePrecision(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePrecision(%q) = %v, %v", p.String(), got, err)
		}
	}
	if _, err := ParsePrecision("fp16"); err == nil {
		t.Error("ParsePrecision(fp16) did not fail")
	}
}

// TestGeneratedKernels checks that kernels_amd64.s is what gen_kernels.go
// writes, so that the two never drift apart.
func TestGeneratedKernels(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator with go run")
	}
	out := filepath.Join(t.TempDir(), "kernels_amd64.s")
	cmd := exec.Command("go", "run", "gen_kernels.go", "-o", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run gen_kernels.go: %v\n%s", err, msg)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("kernels_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, committed) {
		t.Fatal("kernels_amd64.s differs from what gen_kernels.go writes: run go generate ./pkg/ops/gemm")
	}
}
