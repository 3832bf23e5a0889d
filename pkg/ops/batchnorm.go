package ops

import "math"

// BatchNorm holds an eval-mode BatchNorm2d: per channel,
// y = (x - Mean) / sqrt(Var + Eps) * Weight + Bias.
type BatchNorm struct {
	Weight, Bias, Mean, Var []float32
	Eps                     float64 // PyTorch's default is 1e-5
}

// FoldInto merges the BatchNorm into the bias-free convolution c that feeds
// it, so inference runs one conv instead of a conv and a pass over its output:
// w' = w * s and b' = Bias - Mean * s with s = Weight / sqrt(Var + Eps). The
// arithmetic is done in float64 to round once, into float32. c.Weight is
// scaled in place (it usually is the checkpoint tensor, which saves a copy);
// c.Bias is replaced.
func (bn BatchNorm) FoldInto(c *Conv2d) {
	per := len(c.Weight) / c.OutC
	bias := make([]float32, c.OutC)
	for o := range c.OutC {
		s := float64(bn.Weight[o]) / math.Sqrt(float64(bn.Var[o])+bn.Eps)
		row := c.Weight[o*per : (o+1)*per]
		for i, v := range row {
			row[i] = float32(float64(v) * s)
		}
		bias[o] = float32(float64(bn.Bias[o]) - float64(bn.Mean[o])*s)
	}
	c.Bias = bias
}

// BatchNormRef applies the BatchNorm to an N x C x H x W tensor as written
// in its definition, in float64, returning a new tensor. It checks folding.
func BatchNormRef(x *Tensor, bn BatchNorm) *Tensor {
	c := x.Shape[1]
	hw := NumElements(x.Shape[2:])
	out := New(x.Shape...)
	for i, v := range x.Data {
		ch := i / hw % c
		norm := (float64(v) - float64(bn.Mean[ch])) / math.Sqrt(float64(bn.Var[ch])+bn.Eps)
		out.Data[i] = float32(norm*float64(bn.Weight[ch]) + float64(bn.Bias[ch]))
	}
	return out
}
