package model

import "github.com/res2net/res2net/pkg/ops"

// bottle2neck is one residual block (see blockSpec): a 1x1 conv that
// reduces to scale*width channels, the multi-scale unit, a 1x1 conv that
// expands to 4*planes channels, and the shortcut. Every BatchNorm is folded
// into the conv before it.
type bottle2neck struct {
	reduce     ops.Conv2d  // 1x1 conv, BN, ReLU
	unit       multiScale  // the 3x3 branches
	expand     ops.Conv2d  // 1x1 conv, BN; the block's residual add and ReLU run in its epilogue
	shortPool  *ops.Pool2d // the shortcut's average pool before downsample, or nil
	downsample *ops.Conv2d // 1x1 conv, BN; nil when the identity fits
}

// forward computes out = ReLU(expand(unit(reduce(x))) + shortcut(x)) for n
// images x (in channels x n x h x w) and returns the output size.
func (b *bottle2neck) forward(ws *workspace, out, x []float32, n, h, w int) (oh, ow int) {
	b.reduce.Forward(ws.splits, x, n, h, w, nil, ws.conv)
	oh, ow = b.unit.forward(ws, ws.unit, ws.splits, n, h, w)
	shortcut := x
	if b.downsample != nil {
		in, ih, iw := x, h, w
		if b.shortPool != nil {
			in = ws.shortPool
			ws.avgPool(*b.shortPool, in, x, b.downsample.InC*n, h, w)
			ih, iw = b.shortPool.OutSize(h, w)
		}
		b.downsample.Forward(ws.shortcut, in, n, ih, iw, nil, ws.conv)
		shortcut = ws.shortcut
	}
	// The residual add and the block's ReLU happen as expand writes out.
	b.expand.Forward(out, ws.unit, n, oh, ow, shortcut, ws.conv)
	return oh, ow
}

// multiScale is Res2Net's multi-scale unit (Holocron's ScaleConv2d, the
// convs of timm's Bottle2neck). Its input splits into scale groups of width channels; branch
// i is a 3x3 conv + BN + ReLU of split i, or of out[i-1] + split[i] when the
// unit cascades; the last split is carried over (average-pooled in the first
// block of a stage). The results are concatenated on channels.
type multiScale struct {
	width    int          // channels per split
	scale    int          // number of splits
	branches []ops.Conv2d // 3x3 convs (the block's stride, maybe grouped), BN, ReLU
	cascade  bool         // branch i also sees branch i-1's output (all but a stage's first block)
	pool     *ops.Pool2d  // AvgPool2d(3, stride, 1) of the last split, or nil
}

// forward computes the unit for n images. Each split is a channel range of
// x, and each result is written straight into its channel range of out,
// which is therefore the concatenation without any copying of branch
// outputs.
func (u *multiScale) forward(ws *workspace, out, x []float32, n, h, w int) (oh, ow int) {
	oh, ow = u.branches[0].OutSize(h, w)
	in, res := u.width*n*h*w, u.width*n*oh*ow // values per split and per result
	split := func(i int) []float32 { return x[i*in : (i+1)*in] }
	result := func(i int) []float32 { return out[i*res : (i+1)*res] }
	for i := range u.branches {
		in := split(i)
		if u.cascade && i > 0 {
			in = ws.cascade[:len(in)]
			ws.add(in, result(i-1), split(i))
		}
		u.branches[i].Forward(result(i), in, n, h, w, nil, ws.conv)
	}
	if last := u.scale - 1; last > 0 {
		if u.pool != nil {
			ws.avgPool(*u.pool, result(last), split(last), u.width*n, h, w)
		} else {
			ws.copy(result(last), split(last))
		}
	}
	return oh, ow
}
