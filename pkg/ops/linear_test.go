package ops

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestLinearMatchesReference(t *testing.T) {
	for _, tc := range []struct {
		n, in, out int
		bias       bool
	}{{1, 7, 3, true}, {3, 64, 10, true}, {2, 2048, 10, false}, {2, 1, 1, true}} {
		t.Run(fmt.Sprintf("%dx%d_to_%d_bias%v", tc.n, tc.in, tc.out, tc.bias), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(4, uint64(tc.in)))
			x := randTensor(rng, tc.n, tc.in)
			weight := randTensor(rng, tc.out, tc.in)
			l := Linear{In: tc.in, Out: tc.out, Weight: weight.Data}
			if tc.bias {
				l.Bias = randTensor(rng, tc.out).Data
			}
			want := LinearRef(x, weight, l.Bias)
			got := make([]float32, tc.n*tc.out)
			for r := range tc.n {
				l.Forward(got[r*tc.out:(r+1)*tc.out], x.Data[r*tc.in:(r+1)*tc.in])
			}
			assertClose(t, "linear", got, want.Data, 1e-5)
		})
	}
}
