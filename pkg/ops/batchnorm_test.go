package ops

import (
	"math/rand/v2"
	"testing"
)

func TestFoldIntoMatchesConvThenBatchNorm(t *testing.T) {
	tests := []struct{ n, inC, outC, h, w, k, stride, pad int }{
		{2, 3, 5, 7, 9, 3, 1, 1},
		{2, 6, 4, 9, 7, 1, 2, 0},
		{3, 5, 7, 6, 5, 1, 1, 0},
	}
	for _, tc := range tests {
		rng := rand.New(rand.NewPCG(2, uint64(tc.outC)))
		x := randTensor(rng, tc.n, tc.inC, tc.h, tc.w)
		weight := randTensor(rng, tc.outC, tc.inC, tc.k, tc.k)
		bn := BatchNorm{
			Weight: randTensor(rng, tc.outC).Data,
			Bias:   randTensor(rng, tc.outC).Data,
			Mean:   randTensor(rng, tc.outC).Data,
			Var:    make([]float32, tc.outC),
			Eps:    1e-5,
		}
		for i := range bn.Var {
			bn.Var[i] = rng.Float32()*3 + 0.01
		}
		bn.Var[0] = 0 // eps alone keeps the scale finite
		want := BatchNormRef(Conv2dRef(x, weight, nil, tc.stride, tc.pad, 1), bn)

		conv := Conv2d{InC: tc.inC, OutC: tc.outC, Kernel: tc.k, Stride: tc.stride, Pad: tc.pad,
			Weight: append([]float32(nil), weight.Data...)}
		bn.FoldInto(&conv)
		oh, ow := conv.OutSize(tc.h, tc.w)
		got := New(tc.n, tc.outC, oh, ow)
		col := make([]float32, conv.ColSize(1, tc.h, tc.w))
		for b := range tc.n {
			conv.Forward(got.Data[b*tc.outC*oh*ow:], x.Data[b*tc.inC*tc.h*tc.w:], 1, tc.h, tc.w, nil, Exec{Col: col})
		}
		// The zero-variance channel scales by ~316, so allow for that.
		assertClose(t, "folded", got.Data, want.Data, 1e-5)
	}
}

func TestBatchNormRef(t *testing.T) {
	// Channel 0 of a 1 x 2 x 1 x 2 input: (x - 1) / sqrt(4 - eps + eps) * 3 + 0.5.
	x, _ := FromData([]float32{1, 5, 2, 2}, 1, 2, 1, 2)
	bn := BatchNorm{Weight: []float32{3, 1}, Bias: []float32{0.5, -1}, Mean: []float32{1, 2},
		Var: []float32{4 - 1e-5, 1 - 1e-5}, Eps: 1e-5}
	got := BatchNormRef(x, bn)
	assertClose(t, "bn", got.Data, []float32{0.5, 6.5, -1, -1}, 1e-6)
}
