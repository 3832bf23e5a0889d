package model

import (
	"fmt"

	"github.com/res2net/res2net/pkg/ops"
)

// Layer types reported by Summary.
const (
	TypeConv      = "conv"       // 2-D convolution (no bias: BatchNorm follows)
	TypeBatchNorm = "bn"         // BatchNorm2d, folded into the conv before it at load
	TypeReLU      = "relu"       // ReLU
	TypeMaxPool   = "maxpool"    // MaxPool2d(3, 2, 1)
	TypeAvgPool   = "avgpool"    // AvgPool2d(3, stride, 1) of the last split
	TypeConcat    = "concat"     // the multi-scale unit's concatenated branches
	TypeResidual  = "residual"   // block output: ReLU(conv path + shortcut)
	TypeGlobalAvg = "globalpool" // global average pool, flattened
	TypeLinear    = "linear"     // fully connected head
)

// Layer is one step of the network for Summary.
type Layer struct {
	Name     string // state-dict prefix, e.g. "features.4.0.conv.3.conv.1.0"
	Type     string // one of the Type constants
	OutShape []int  // output shape for one image: C x H x W, or C after pooling
	Params   int64  // learnable parameters; BatchNorm running stats excluded
	MACs     int64  // multiply-accumulates for one image
	// Weight is the shape of the layer's weight tensor (for BatchNorm, of
	// each of its four vectors); nil for layers without parameters.
	Weight []int
}

// Summary lists every layer of the network, in execution order, for one
// h x w image: shapes, parameters and multiply-accumulates (for a conv,
// cout * cin * kh * kw * oh * ow). The multi-scale unit appears as its
// branches, the average pool of its last split where there is one, and a
// concat row for its output.
func (c Config) Summary(h, w int) []Layer {
	var layers []Layer
	add := func(name, typ string, shape ...int) {
		layers = append(layers, Layer{Name: name, Type: typ, OutShape: shape})
	}
	conv := func(name string, in, out, k, stride, pad int) {
		h, w = (h+2*pad-k)/stride+1, (w+2*pad-k)/stride+1
		weight := []int{out, in, k, k}
		layers = append(layers, Layer{Name: name, Type: TypeConv, OutShape: []int{out, h, w},
			Params: int64(ops.NumElements(weight)), MACs: int64(ops.NumElements(weight) * h * w), Weight: weight})
	}
	bn := func(name string, ch int) {
		layers = append(layers, Layer{Name: name, Type: TypeBatchNorm, OutShape: []int{ch, h, w},
			Params: int64(2 * ch), Weight: []int{ch}})
	}

	// Stem: features.0 to features.3.
	conv("features.0", inChannels, c.StemChannels, 7, 2, 3)
	bn("features.1", c.StemChannels)
	add("features.2", TypeReLU, c.StemChannels, h, w)
	h, w = (h+2-3)/2+1, (w+2-3)/2+1
	add("features.3", TypeMaxPool, c.StemChannels, h, w)

	for _, stage := range c.stages() {
		for _, b := range stage {
			inH, inW := h, w
			conv(b.name+".conv.0", b.in, b.scale*b.width, 1, 1, 0)
			bn(b.name+".conv.1", b.scale*b.width)
			add(b.name+".conv.2", TypeReLU, b.scale*b.width, h, w)
			for i := range b.branches() {
				h, w = inH, inW // every branch reads a split at the block's input size
				br := fmt.Sprintf("%s.conv.3.conv.%d", b.name, i)
				conv(br+".0", b.width, b.width, 3, b.stride, 1)
				bn(br+".1", b.width)
				add(br+".2", TypeReLU, b.width, h, w)
			}
			if b.downsample && b.scale > 1 {
				add(b.name+".conv.3.downsample", TypeAvgPool, b.width, h, w)
			}
			add(b.name+".conv.3", TypeConcat, b.scale*b.width, h, w)
			conv(b.name+".conv.4", b.scale*b.width, b.out(), 1, 1, 0)
			bn(b.name+".conv.5", b.out())
			if b.downsample {
				h, w = inH, inW
				conv(b.name+".downsample.0", b.in, b.out(), 1, b.stride, 0)
				bn(b.name+".downsample.1", b.out())
			}
			add(b.name, TypeResidual, b.out(), h, w)
		}
	}

	add("pool", TypeGlobalAvg, c.features())
	weight := []int{c.Classes, c.features()}
	layers = append(layers, Layer{Name: "head", Type: TypeLinear, OutShape: []int{c.Classes},
		Params: int64(ops.NumElements(weight) + c.Classes), MACs: int64(ops.NumElements(weight)), Weight: weight})
	return layers
}
