package ops

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randTensor returns a tensor of the given shape with values uniform in [-1, 1).
func randTensor(rng *rand.Rand, shape ...int) *Tensor {
	t := New(shape...)
	for i := range t.Data {
		t.Data[i] = rng.Float32()*2 - 1
	}
	return t
}

// fill sets every value of x to v; tests poison scratch and output buffers
// with NaN to prove that every value is written.
func fill(x []float32, v float32) {
	for i := range x {
		x[i] = v
	}
}

// assertClose fails when got and want differ in length or by more than
// tol * max(1, max|want|) anywhere.
func assertClose(t *testing.T, name string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	scale := 1.0
	for _, v := range want {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	worst, at := 0.0, 0
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if d > worst || math.IsNaN(d) {
			worst, at = d, i
			if math.IsNaN(d) {
				break
			}
		}
	}
	if worst > tol*scale || math.IsNaN(worst) {
		t.Errorf("%s: max diff %g at %d (got %g, want %g), tolerance %g", name, worst, at, got[at], want[at], tol*scale)
	}
}

func nan() float64 { return math.NaN() }

// channelMajor returns the values of the N x C x H x W tensor x in the
// C x N x H x W order Conv2d.Forward takes batches in.
func channelMajor(x *Tensor) []float32 {
	n, c := x.Shape[0], x.Shape[1]
	hw := NumElements(x.Shape[2:])
	out := make([]float32, len(x.Data))
	for img := range n {
		for ch := range c {
			copy(out[(ch*n+img)*hw:(ch*n+img+1)*hw], x.Data[(img*c+ch)*hw:])
		}
	}
	return out
}

// reluRef clamps x at zero in place: the explicit ReLU that references
// apply where the network fuses it into the GEMM epilogue.
func reluRef(x []float32) {
	for i, v := range x {
		x[i] = max(v, 0)
	}
}
