package cam

import (
	"math"
	"testing"

	"github.com/res2net/res2net/internal/npy"
	"github.com/res2net/res2net/pkg/ops"
)

// TestUpsampleMatchesPyTorch upsamples PyTorch's map of class 0 of a shipped
// photo (testdata/beyond, scripts/make_beyond_fixtures.py) onto the
// 224x224 input and compares with F.interpolate(bilinear,
// align_corners=False).
func TestUpsampleMatchesPyTorch(t *testing.T) {
	cams, err := npy.Read("../../testdata/beyond/astronaut.cams.npy")
	if err != nil {
		t.Fatal(err)
	}
	want, err := npy.Read("../../testdata/beyond/astronaut.upsampled.npy")
	if err != nil {
		t.Fatal(err)
	}
	h, w := cams.Shape[1], cams.Shape[2]
	side := want.Shape[0]
	got, err := Upsample(cams.Data[:h*w], h, w, Window{W: float64(side), H: float64(side)}, side, side)
	if err != nil {
		t.Fatal(err)
	}
	tol := 1e-5 * math.Max(1, maxAbs(want))
	for i, v := range want.Data {
		if d := math.Abs(float64(got[i] - v)); d > tol {
			t.Fatalf("pixel (%d, %d): %v, PyTorch %v", i%side, i/side, got[i], v)
		}
	}
}

func maxAbs(t *ops.Tensor) float64 {
	m := 0.0
	for _, v := range t.Data {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}
