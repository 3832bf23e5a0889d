package model

import (
	"fmt"

	"github.com/res2net/res2net/pkg/ops"
)

// arch is the network a Config describes, layer by layer, with the
// state-dict names of its layout: the one description that New builds
// from, Summary and StateDict list, and the workspaces are sized by (through
// the Network New builds).
type arch struct {
	stem        []convSpec // the stem's convs, each with BN and ReLU
	maxPool     ops.Pool2d // after the stem
	maxPoolName string
	stages      [4][]blockSpec
	pool        string // the global average pool's name in Summary
	head        string // state-dict prefix of the classifier
}

// convSpec is one conv followed by a BatchNorm (and a ReLU when act is set).
type convSpec struct {
	conv, bn string // state-dict prefixes of the conv and its BatchNorm
	act      string // Summary name of the ReLU after the BatchNorm, "" for none
	in, out  int
	kernel   int
	stride   int
	pad      int
	groups   int
	// columns is the conv's output positions per image at referenceCrop,
	// the layout hint of its packed weights (ops.Conv2d.Columns); set by
	// assemble.
	columns int
}

func (s convSpec) weightShape() []int { return []int{s.out, s.in / s.groups, s.kernel, s.kernel} }

// blockSpec is one Bottle2neck: a 1x1 conv that reduces to scale*width
// channels, the multi-scale unit, a 1x1 conv that expands to 4*planes
// channels, and the shortcut.
type blockSpec struct {
	name     string // state-dict prefix of the block; its Summary row is the residual ReLU
	in, out  int    // channels
	width    int    // channels per scale split
	scale    int    // number of splits
	stride   int    // of the branch convs and the shortcut
	reduce   convSpec
	branches []convSpec // max(1, scale-1) 3x3 convs, width -> width
	// cascade: branch i sees out[i-1] + split[i]; off in a stage's first
	// block, which also average-pools its last split (splitPool).
	cascade       bool
	splitPool     *ops.Pool2d // AvgPool2d(3, stride, 1) of the last split, or nil
	splitPoolName string
	concat        string   // Summary name of the unit's concatenated output
	expand        convSpec // its ReLU runs after the residual add
	// The projection shortcut, where the identity does not fit: an
	// optional average pool (ShortcutAvgPool, strided blocks) and a 1x1
	// conv + BN; both nil for the identity.
	shortPool     *ops.Pool2d
	shortPoolName string
	downsample    *convSpec
}

// arch lays the network out.
func (c Config) arch() arch {
	var a arch
	groups := max(c.Cardinality, 1)
	timm := c.Layout == LayoutTimm
	conv := func(conv, bn, act string, in, out, k, stride int) convSpec {
		return convSpec{conv: conv, bn: bn, act: act, in: in, out: out, kernel: k, stride: stride, pad: k / 2, groups: 1}
	}
	switch {
	case !timm:
		a.stem = []convSpec{conv("features.0", "features.1", "features.2", inChannels, c.StemChannels, 7, 2)}
		a.maxPoolName, a.pool, a.head = "features.3", "pool", "head"
	case c.Stem == StemDeep:
		a.stem = []convSpec{
			conv("conv1.0", "conv1.1", "conv1.2", inChannels, c.StemWidth, 3, 2),
			conv("conv1.3", "conv1.4", "conv1.5", c.StemWidth, c.StemWidth, 3, 1),
			conv("conv1.6", "bn1", "act1", c.StemWidth, c.StemChannels, 3, 1),
		}
	default:
		a.stem = []convSpec{conv("conv1", "bn1", "act1", inChannels, c.StemChannels, 7, 2)}
	}
	if timm {
		a.maxPoolName, a.pool, a.head = "maxpool", "global_pool", "fc"
	}
	a.maxPool = ops.Pool2d{Kernel: 3, Stride: 2, Pad: 1}

	in := c.StemChannels
	for s := range 4 {
		for i := range c.Layers[s] {
			stride := 1
			if i == 0 && s > 0 {
				stride = 2
			}
			b := blockSpec{in: in, out: expansion * c.Planes[s], width: c.width(s), scale: c.Scale, stride: stride}
			inner := b.width * b.scale
			first := stride != 1 || in != b.out // Holocron and timm both tie the unit's mode to the shortcut
			b.cascade = !first
			if timm {
				b.name = fmt.Sprintf("layer%d.%d", s+1, i)
				b.reduce = conv(b.name+".conv1", b.name+".bn1", b.name+".relu1", in, inner, 1, 1)
				for j := range max(1, b.scale-1) {
					br := conv(fmt.Sprintf("%s.convs.%d", b.name, j), fmt.Sprintf("%s.bns.%d", b.name, j),
						fmt.Sprintf("%s.relus.%d", b.name, j), b.width, b.width, 3, stride)
					br.groups = groups
					b.branches = append(b.branches, br)
				}
				b.splitPoolName, b.concat = b.name+".pool", b.name+".cat"
				b.expand = conv(b.name+".conv3", b.name+".bn3", "", inner, b.out, 1, 1)
			} else {
				b.name = fmt.Sprintf("features.%d.%d", s+4, i)
				b.reduce = conv(b.name+".conv.0", b.name+".conv.1", b.name+".conv.2", in, inner, 1, 1)
				for j := range max(1, b.scale-1) {
					br := fmt.Sprintf("%s.conv.3.conv.%d", b.name, j)
					bs := conv(br+".0", br+".1", br+".2", b.width, b.width, 3, stride)
					bs.groups = groups
					b.branches = append(b.branches, bs)
				}
				b.splitPoolName, b.concat = b.name+".conv.3.downsample", b.name+".conv.3"
				b.expand = conv(b.name+".conv.4", b.name+".conv.5", "", inner, b.out, 1, 1)
			}
			if first && b.scale > 1 {
				b.splitPool = &ops.Pool2d{Kernel: 3, Stride: stride, Pad: 1}
			}
			if first {
				ds := b.name + ".downsample"
				switch {
				case c.Shortcut == ShortcutAvgPool:
					// downsample.0 is the pool, or an Identity at stride 1.
					if stride != 1 {
						b.shortPool = &ops.Pool2d{Kernel: 2, Stride: stride, CeilMode: true, ExcludePad: true}
						b.shortPoolName = ds + ".0"
					}
					d := conv(ds+".1", ds+".2", "", in, b.out, 1, 1)
					b.downsample = &d
				default:
					d := conv(ds+".0", ds+".1", "", in, b.out, 1, stride)
					b.downsample = &d
				}
			}
			a.stages[s] = append(a.stages[s], b)
			in = b.out
		}
	}
	return a
}

// Layer types reported by Summary.
const (
	TypeConv      = "conv"       // 2-D convolution (no bias: BatchNorm follows)
	TypeBatchNorm = "bn"         // BatchNorm2d, folded into the conv before it at load
	TypeReLU      = "relu"       // ReLU
	TypeMaxPool   = "maxpool"    // MaxPool2d(3, 2, 1)
	TypeAvgPool   = "avgpool"    // AvgPool2d(3, stride, 1) of the last split, or the shortcut's AvgPool2d(2, 2)
	TypeConcat    = "concat"     // the multi-scale unit's concatenated branches
	TypeResidual  = "residual"   // block output: ReLU(conv path + shortcut)
	TypeGlobalAvg = "globalpool" // global average pool, flattened
	TypeLinear    = "linear"     // fully connected head
)

// Layer is one step of the network for Summary.
type Layer struct {
	Name     string // state-dict prefix, e.g. "features.4.0.conv.3.conv.1.0" or "layer1.0.convs.1"
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
// cout * cin/groups * kh * kw * oh * ow). The multi-scale unit appears as
// its branches, the average pool of its last split where there is one, and
// a concat row for its output. Activation, pool and concat rows of the timm
// layout, which have no state-dict keys, are named after the block.
func (c Config) Summary(h, w int) []Layer {
	var layers []Layer
	add := func(name, typ string, shape ...int) {
		layers = append(layers, Layer{Name: name, Type: typ, OutShape: shape})
	}
	convBN := func(s convSpec) {
		h, w = (h+2*s.pad-s.kernel)/s.stride+1, (w+2*s.pad-s.kernel)/s.stride+1
		weight := s.weightShape()
		layers = append(layers,
			Layer{Name: s.conv, Type: TypeConv, OutShape: []int{s.out, h, w},
				Params: int64(ops.NumElements(weight)), MACs: int64(ops.NumElements(weight) * h * w), Weight: weight},
			Layer{Name: s.bn, Type: TypeBatchNorm, OutShape: []int{s.out, h, w},
				Params: int64(2 * s.out), Weight: []int{s.out}})
		if s.act != "" {
			add(s.act, TypeReLU, s.out, h, w)
		}
	}
	pool := func(name, typ string, p ops.Pool2d, ch int) {
		h, w = p.OutSize(h, w)
		add(name, typ, ch, h, w)
	}

	a := c.arch()
	for _, s := range a.stem {
		convBN(s)
	}
	pool(a.maxPoolName, TypeMaxPool, a.maxPool, c.StemChannels)
	for _, stage := range a.stages {
		for _, b := range stage {
			inH, inW := h, w
			convBN(b.reduce)
			midH, midW := h, w
			for _, br := range b.branches {
				h, w = midH, midW // every branch reads a split at the block's input size
				convBN(br)
			}
			if b.splitPool != nil {
				h, w = midH, midW
				pool(b.splitPoolName, TypeAvgPool, *b.splitPool, b.width)
			}
			add(b.concat, TypeConcat, b.scale*b.width, h, w)
			convBN(b.expand)
			outH, outW := h, w
			if b.downsample != nil {
				h, w = inH, inW
				if b.shortPool != nil {
					pool(b.shortPoolName, TypeAvgPool, *b.shortPool, b.in)
				}
				convBN(*b.downsample)
			}
			h, w = outH, outW
			add(b.name, TypeResidual, b.out, h, w)
		}
	}

	add(a.pool, TypeGlobalAvg, c.Features())
	weight := []int{c.Classes, c.Features()}
	layers = append(layers, Layer{Name: a.head, Type: TypeLinear, OutShape: []int{c.Classes},
		Params: int64(ops.NumElements(weight) + c.Classes), MACs: int64(ops.NumElements(weight)), Weight: weight})
	return layers
}
