// Package model is Res2Net (Gao et al., "Res2Net: A New Multi-scale Backbone
// Architecture", 2019) as Holocron builds it: a ResNet-50 layout whose
// Bottle2neck blocks replace the 3x3 conv with a multi-scale unit. It checks a
// state dict against the architecture, folds BatchNorm into the convolutions
// and runs inference on float32 NCHW batches.
package model

import (
	"errors"
	"fmt"
)

// Config describes a Res2Net. The zero value is not valid; start from
// Res2Net50.
type Config struct {
	Layers       [4]int // Bottle2neck blocks in each stage (features.4 to features.7)
	Planes       [4]int // planes of each stage; a block outputs 4*planes channels
	StemChannels int    // output channels of the 7x7 stem conv
	BaseWidth    int    // each scale split has floor(planes*BaseWidth/64) channels
	Scale        int    // number of splits in the multi-scale unit
	Classes      int    // outputs of the head; New takes it from head.weight when 0
}

// Res2Net50 returns the configuration of Res2Net-50 26w x 4s with the
// 10-class Imagenette head of the published checkpoint.
func Res2Net50() Config {
	return Config{
		Layers:       [4]int{3, 4, 6, 3},
		Planes:       [4]int{64, 128, 256, 512},
		StemChannels: 64,
		BaseWidth:    26,
		Scale:        4,
		Classes:      10,
	}
}

const (
	inChannels = 3    // RGB input
	expansion  = 4    // a Bottle2neck outputs expansion*planes channels
	bnEps      = 1e-5 // PyTorch's BatchNorm2d default, used by the checkpoint
)

// Validate reports a configuration that cannot be built: a non-positive
// size, or splits that come out empty.
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
		if c.Planes[i] >= 1 && c.BaseWidth >= 1 && c.width(i) < 1 {
			errs = append(errs, fmt.Errorf("Planes[%d] = %d with BaseWidth %d gives splits of 0 channels", i, c.Planes[i], c.BaseWidth))
		}
	}
	positive("StemChannels", c.StemChannels)
	positive("BaseWidth", c.BaseWidth)
	positive("Scale", c.Scale)
	positive("Classes", c.Classes)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid model config: %w", err)
	}
	return nil
}

// width is the channel count of one scale split in stage s: Holocron's
// math.floor(planes * base_width / 64).
func (c Config) width(s int) int { return c.Planes[s] * c.BaseWidth / 64 }

// blockSpec is the geometry of one Bottle2neck, features.S.B.
type blockSpec struct {
	name       string // state-dict prefix, "features.S.B"
	in, planes int    // input channels; output channels are expansion*planes
	width      int    // channels per scale split
	scale      int    // number of splits
	stride     int    // of the branch convs and the downsample
	// downsample: the identity does not fit (stride or channels change), so
	// the shortcut is a 1x1 conv + BN, and the multi-scale unit runs without
	// its cascade and average-pools its last split (Holocron ties the two).
	downsample bool
}

func (b blockSpec) out() int { return expansion * b.planes }

// branches is the number of 3x3 branch convs of the multi-scale unit.
func (b blockSpec) branches() int { return max(1, b.scale-1) }

// stages lists the blocks of features.4 to features.7. The first block of
// the first stage keeps the resolution; the first blocks of the others halve it.
func (c Config) stages() [4][]blockSpec {
	var st [4][]blockSpec
	in := c.StemChannels
	for s := range 4 {
		for b := range c.Layers[s] {
			stride := 1
			if b == 0 && s > 0 {
				stride = 2
			}
			spec := blockSpec{
				name:   fmt.Sprintf("features.%d.%d", s+4, b),
				in:     in,
				planes: c.Planes[s],
				width:  c.width(s),
				scale:  c.Scale,
				stride: stride,
			}
			spec.downsample = stride != 1 || in != spec.out()
			st[s] = append(st[s], spec)
			in = spec.out()
		}
	}
	return st
}

// features is the channel count entering the head.
func (c Config) features() int { return expansion * c.Planes[3] }

// Param is one entry of a state dict: a tensor's key and shape.
type Param struct {
	Name  string
	Shape []int
}

// StateDict lists the tensors a checkpoint of this configuration holds, in
// PyTorch's order, without the BatchNorm num_batches_tracked counters that
// inference does not use.
func (c Config) StateDict() []Param {
	var params []Param
	for _, l := range c.Summary(1, 1) {
		switch l.Type {
		case TypeConv:
			params = append(params, Param{l.Name + ".weight", l.Weight})
		case TypeBatchNorm:
			for _, s := range []string{"weight", "bias", "running_mean", "running_var"} {
				params = append(params, Param{l.Name + "." + s, l.Weight})
			}
		case TypeLinear:
			params = append(params, Param{l.Name + ".weight", l.Weight}, Param{l.Name + ".bias", l.Weight[:1]})
		}
	}
	return params
}
