// Package cam computes class activation maps (Zhou et al., "Learning Deep
// Features for Discriminative Localization", CVPR 2016) and draws them over
// the photo they explain.
//
// For a network that ends in global average pooling and a linear layer,
// the logit of class c is the spatial mean of the map
// sum_k W[c,k] * F_k(y, x) over the last stage's feature maps F, plus the
// bias: the map shows exactly where the evidence for c comes from.
package cam

import (
	"fmt"
	"math"
)

// Grid returns the class activation map of one image: maps holds its
// last-stage feature maps, channels x h x w in row-major order, and
// weights the classifier's row for the class (channels values). The result
// is h x w, row-major, accumulated in float64 so that it matches PyTorch's
// float32 einsum to rounding.
func Grid(maps []float32, channels, h, w int, weights []float32) ([]float32, error) {
	hw := h * w
	switch {
	case channels < 1 || h < 1 || w < 1:
		return nil, fmt.Errorf("cam: feature maps of %d x %d x %d", channels, h, w)
	case len(maps) != channels*hw:
		return nil, fmt.Errorf("cam: %d x %d x %d feature maps need %d values, have %d", channels, h, w, channels*hw, len(maps))
	case len(weights) != channels:
		return nil, fmt.Errorf("cam: %d feature channels but %d class weights", channels, len(weights))
	}
	acc := make([]float64, hw)
	for k, wk := range weights {
		plane := maps[k*hw : (k+1)*hw]
		for i, v := range plane {
			acc[i] += float64(wk) * float64(v)
		}
	}
	out := make([]float32, hw)
	for i, v := range acc {
		out[i] = float32(v)
	}
	return out, nil
}

// Normalize rescales grid to [0, 1] by its minimum and maximum, the usual
// way to show a map; a constant grid becomes all zeros.
func Normalize(grid []float32) []float32 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range grid {
		lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
	}
	out := make([]float32, len(grid))
	if !(hi > lo) {
		return out
	}
	for i, v := range grid {
		out[i] = float32((float64(v) - lo) / (hi - lo))
	}
	return out
}
