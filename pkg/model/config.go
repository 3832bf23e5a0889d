// Package model is the Res2Net family (Gao et al., "Res2Net: A New
// Multi-scale Backbone Architecture", 2019) as Holocron and timm build it: a
// ResNet layout whose Bottle2neck blocks replace the 3x3 conv with a
// multi-scale unit, with the variants' widths, scales, depths, Res2NeXt's
// cardinality, the deep stem and the average-pool shortcut. A Config
// describes one network; the package checks a state dict against it, folds
// BatchNorm into the convolutions and runs inference on float32 NCHW
// batches.
package model

import (
	"errors"
	"fmt"
	"github.com/res2net/res2net/pkg/ops/gemm"
)

// Stem is the kind of the network's stem, before the max pool.
type Stem int

const (
	// Stem7x7 is a 7x7 stride-2 conv, BN, ReLU (ResNet's).
	Stem7x7 Stem = iota
	// StemDeep is three 3x3 convs (the first at stride 2) of
	// StemWidth, StemWidth and StemChannels channels, each with BN and
	// ReLU (ResNet-D's, timm's "deep" stem).
	StemDeep
)

// Shortcut is the kind of the projection shortcut of each stage's first block.
type Shortcut int

const (
	// ShortcutConv is a 1x1 conv at the block's stride, then BN.
	ShortcutConv Shortcut = iota
	// ShortcutAvgPool is AvgPool2d(2, stride, ceil_mode=True,
	// count_include_pad=False) where the block strides, then a 1x1 conv
	// at stride 1 and BN (ResNet-D's, timm's avg_down).
	ShortcutAvgPool
)

// Layout is how a state dict names the network's tensors.
type Layout int

const (
	// LayoutHolocron is Holocron's nn.Sequential naming: features.0 (stem
	// conv) to features.7 (stage 4), head.
	LayoutHolocron Layout = iota
	// LayoutTimm is timm's ResNet naming: conv1, bn1, layer1 to layer4, fc.
	LayoutTimm
)

func (l Layout) String() string {
	switch l {
	case LayoutHolocron:
		return "holocron"
	case LayoutTimm:
		return "timm"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

func (s Stem) String() string {
	switch s {
	case Stem7x7:
		return "7x7"
	case StemDeep:
		return "deep"
	}
	return fmt.Sprintf("Stem(%d)", int(s))
}

func (s Shortcut) String() string {
	switch s {
	case ShortcutConv:
		return "conv"
	case ShortcutAvgPool:
		return "avgpool"
	}
	return fmt.Sprintf("Shortcut(%d)", int(s))
}

// Config describes a Res2Net. The zero value is not valid; start from a
// preset (Res2Net50, Preset).
type Config struct {
	Layers       [4]int // Bottle2neck blocks in each stage
	Planes       [4]int // planes of each stage; a block outputs 4*planes channels
	Stem         Stem
	StemWidth    int // channels of the deep stem's first two convs; 0 for Stem7x7
	StemChannels int // output channels of the stem
	BaseWidth    int // a scale split has floor(planes*BaseWidth/64)*Cardinality channels
	Scale        int // number of splits in the multi-scale unit
	Cardinality  int // groups of the 3x3 branch convs (Res2NeXt)
	Shortcut     Shortcut
	Classes      int // outputs of the head; New takes it from the head's weight when 0
	Layout       Layout
	// Precision is the arithmetic of the convolutions: gemm.FP32 (the
	// zero value) or gemm.BF16, for which New packs the weights. On a CPU
	// without gemm.HasBF16, New builds FP32 instead, and the Network's
	// Config says so.
	Precision gemm.Precision
}

const (
	inChannels = 3    // RGB input
	expansion  = 4    // a Bottle2neck outputs expansion*planes channels
	bnEps      = 1e-5 // PyTorch's BatchNorm2d default, used by every checkpoint
)

// Validate reports a configuration that cannot be built: a non-positive
// size, splits that come out empty, or a layout that has no names for the
// stem or shortcut asked for.
func (c Config) Validate() error {
	var errs []error
	positive := func(name string, v int) {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s is %d, must be at least 1", name, v))
		}
	}
	for i := range 4 {
		positive(fmt.Sprintf("Layers[%d]", i), c.Layers[i])
		positive(fmt.Sprintf("Planes[%d]", i), c.Planes[i])
		if c.Planes[i] >= 1 && c.BaseWidth >= 1 && c.Cardinality >= 1 && c.width(i) < 1 {
			errs = append(errs, fmt.Errorf("Planes[%d] = %d with BaseWidth %d gives splits of 0 channels", i, c.Planes[i], c.BaseWidth))
		}
	}
	positive("StemChannels", c.StemChannels)
	positive("BaseWidth", c.BaseWidth)
	positive("Scale", c.Scale)
	positive("Cardinality", c.Cardinality)
	positive("Classes", c.Classes)
	switch c.Stem {
	case Stem7x7:
	case StemDeep:
		positive("StemWidth", c.StemWidth)
	default:
		errs = append(errs, fmt.Errorf("unknown stem %v", c.Stem))
	}
	if c.Shortcut != ShortcutConv && c.Shortcut != ShortcutAvgPool {
		errs = append(errs, fmt.Errorf("unknown shortcut %v", c.Shortcut))
	}
	if c.Precision != gemm.FP32 && c.Precision != gemm.BF16 {
		errs = append(errs, fmt.Errorf("unknown precision %v", c.Precision))
	}
	switch c.Layout {
	case LayoutTimm:
	case LayoutHolocron:
		if c.Stem != Stem7x7 || c.Shortcut != ShortcutConv {
			errs = append(errs, fmt.Errorf("the holocron layout has no names for a %v stem or a %v shortcut", c.Stem, c.Shortcut))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown layout %v", c.Layout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid model config: %w", err)
	}
	return nil
}

// width is the channel count of one scale split in stage s:
// floor(planes * base_width / 64) * cardinality, as both Holocron and timm
// compute it.
func (c Config) width(s int) int { return c.Planes[s] * c.BaseWidth / 64 * c.Cardinality }

// Features is the channel count of the last stage's output, the head's input.
func (c Config) Features() int { return expansion * c.Planes[3] }

// Param is one entry of a state dict: a tensor's key and shape.
type Param struct {
	Name  string
	Shape []int
}

// StateDict lists the tensors a checkpoint of this configuration holds, in
// the order its layout saves them, without the BatchNorm
// num_batches_tracked counters that inference does not use.
func (c Config) StateDict() []Param {
	var params []Param
	conv := func(s convSpec) {
		params = append(params, Param{s.conv + ".weight", s.weightShape()})
	}
	bn := func(s convSpec) {
		for _, v := range []string{"weight", "bias", "running_mean", "running_var"} {
			params = append(params, Param{s.bn + "." + v, []int{s.out}})
		}
	}
	a := c.arch()
	for _, s := range a.stem {
		conv(s)
		bn(s)
	}
	for _, stage := range a.stages {
		for _, b := range stage {
			conv(b.reduce)
			bn(b.reduce)
			// timm keeps the branch convs and their BatchNorms in two
			// ModuleLists, so all the convs come first.
			for _, s := range b.branches {
				conv(s)
				if c.Layout == LayoutHolocron {
					bn(s)
				}
			}
			if c.Layout == LayoutTimm {
				for _, s := range b.branches {
					bn(s)
				}
			}
			conv(b.expand)
			bn(b.expand)
			if b.downsample != nil {
				conv(*b.downsample)
				bn(*b.downsample)
			}
		}
	}
	return append(params,
		Param{a.head + ".weight", []int{c.Classes, c.Features()}},
		Param{a.head + ".bias", []int{c.Classes}})
}

// String describes the configuration in one line, for reports on a
// checkpoint that is not a published model.
func (c Config) String() string {
	s := fmt.Sprintf("Res2Net, %v layout: layers %v, planes %v, %dw x %ds", c.Layout, c.Layers, c.Planes, c.BaseWidth, c.Scale)
	if c.Cardinality != 1 {
		s += fmt.Sprintf(", cardinality %d", c.Cardinality)
	}
	if c.Stem == StemDeep {
		s += fmt.Sprintf(", deep stem (%d, %d, %d)", c.StemWidth, c.StemWidth, c.StemChannels)
	} else {
		s += fmt.Sprintf(", %v stem (%d)", c.Stem, c.StemChannels)
	}
	return s + fmt.Sprintf(", %v shortcut, %d classes", c.Shortcut, c.Classes)
}
