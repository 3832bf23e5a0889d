package ops

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSoftmax(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := randTensor(rng, 3, 10)
	for i := range x.Data {
		x.Data[i] *= 20
	}
	got := Softmax(x)
	// The definition, exp(x_i) / sum_j exp(x_j), is safe in float64 here.
	for r := range 3 {
		row := x.Data[r*10 : (r+1)*10]
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v))
		}
		want := make([]float32, 10)
		for i, v := range row {
			want[i] = float32(math.Exp(float64(v)) / sum)
		}
		assertClose(t, "row", got.Data[r*10:(r+1)*10], want, 1e-6)
	}

	// Logits too large for a naive exp in any precision: shifting them all by
	// the same amount must not change the result.
	big, _ := FromData([]float32{1000, 1001, 999, 1000}, 1, 4)
	small, _ := FromData([]float32{0, 1, -1, 0}, 1, 4)
	assertClose(t, "shifted", Softmax(big).Data, Softmax(small).Data, 1e-6)
}

// topKRef sorts every index: value descending, NaN last, ties by index.
func topKRef(scores []float32, k int) []int {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		an, bn := math.IsNaN(float64(scores[a])), math.IsNaN(float64(scores[b]))
		switch {
		case an || bn:
			if an == bn {
				return 0
			}
			if an {
				return 1
			}
			return -1
		case scores[a] > scores[b]:
			return -1
		case scores[a] < scores[b]:
			return 1
		}
		return 0
	})
	return idx[:max(0, min(k, len(idx)))]
}

func TestTopKMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := range 200 {
		n := rng.IntN(12)
		scores := make([]float32, n)
		for i := range scores {
			// Few distinct values, so ties are common.
			scores[i] = float32(rng.IntN(4))
			if rng.IntN(10) == 0 {
				scores[i] = float32(nan())
			}
		}
		for k := -1; k <= n+1; k++ {
			if got, want := TopK(scores, k), topKRef(scores, k); !slices.Equal(got, want) {
				t.Fatalf("trial %d: TopK(%v, %d) = %v, want %v", trial, scores, k, got, want)
			}
		}
	}
}

func TestAdd(t *testing.T) {
	a := []float32{1, 2, 3}
	Add(a, a, []float32{10, 20, 30})
	if !slices.Equal(a, []float32{11, 22, 33}) {
		t.Errorf("Add = %v", a)
	}
}
