package ops

import (
	"cmp"
	"math"
)

// Softmax returns the softmax of x along its last dimension (each row of an
// N x Classes logits tensor becomes probabilities). The row maximum is
// subtracted first so large logits cannot overflow exp, and sums are
// accumulated in float64.
func Softmax(x *Tensor) *Tensor {
	out := New(x.Shape...)
	cols := 1
	if len(x.Shape) > 0 {
		cols = x.Shape[len(x.Shape)-1]
	}
	if cols == 0 {
		return out
	}
	for r := 0; r < len(x.Data); r += cols {
		row, dst := x.Data[r:r+cols], out.Data[r:r+cols]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, float64(v))
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v) - m)
		}
		for i, v := range row {
			dst[i] = float32(math.Exp(float64(v)-m) / sum)
		}
	}
	return out
}

// TopK returns the indices of the k largest scores, largest first; equal
// scores keep index order, and NaN ranks below every number. k is clamped to
// [0, len(scores)]. It keeps a sorted list of k candidates, which for the
// few classes and small k of a classifier beats sorting every index.
func TopK(scores []float32, k int) []int {
	k = max(0, min(k, len(scores)))
	top := make([]int, 0, k)
	for i := range scores {
		// Find where i goes among the candidates; ties stay behind earlier
		// indices because only strictly greater scores move ahead.
		pos := len(top)
		for pos > 0 && greater(scores[i], scores[top[pos-1]]) {
			pos--
		}
		if pos == k {
			continue
		}
		if len(top) < k {
			top = append(top, 0)
		}
		copy(top[pos+1:], top[pos:])
		top[pos] = i
	}
	return top
}

// greater orders scores for TopK: by value, with NaN below everything.
func greater(a, b float32) bool {
	return cmp.Compare(a, b) > 0
}
