package model

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/ops/gemm"
)

// PackedArray is one array of a Network's weights as New leaves them.
type PackedArray struct {
	Name   string // a conv's "<prefix>.bias" or "<prefix>.packed.<group>", the head's "<prefix>.weight" or ".bias"
	Values []float32
}

// Packed returns the network's weights as New leaves them, named and in a
// fixed order: each conv's folded bias and its weights packed for this CPU
// and build (gemm.PackedA.Values), then the head's weight and bias. It is
// what a cache of packed weights stores, so that FromPacked rebuilds the
// same network without reading, folding and packing the checkpoint again.
// The values are the network's own: callers must not modify them.
func (m *Network) Packed() []PackedArray {
	var out []PackedArray
	m.eachConv(func(s convSpec, c *ops.Conv2d) {
		out = append(out, PackedArray{s.conv + ".bias", c.Bias})
		for g, v := range c.PackedValues() {
			out = append(out, PackedArray{packedName(s, g), v})
		}
	})
	head := m.cfg.arch().head
	return append(out, PackedArray{head + ".weight", m.head.Weight}, PackedArray{head + ".bias", m.head.Bias})
}

// packedName names group g of the packed weights of s.
func packedName(s convSpec, g int) string { return s.conv + ".packed." + strconv.Itoa(g) }

// eachConv calls fn with every conv of m and the spec it was built from.
func (m *Network) eachConv(fn func(convSpec, *ops.Conv2d)) {
	a := m.cfg.arch()
	for i, s := range a.stem {
		fn(s, &m.stem[i])
	}
	for st, stage := range a.stages {
		for i, spec := range stage {
			b := &m.stages[st][i]
			fn(spec.reduce, &b.reduce)
			for j, br := range spec.branches {
				fn(br, &b.unit.branches[j])
			}
			fn(spec.expand, &b.expand)
			if spec.downsample != nil {
				fn(*spec.downsample, b.downsample)
			}
		}
	}
}

// FromPacked builds the network cfg describes from arrays as Packed
// returned them for a network of that configuration (its Config(), with
// Classes set) packed on this CPU by this build. The values are used in
// place and never written, so they may be read-only memory mapped from a
// file, and must outlive the network. It fails, naming the arrays, when
// one is missing, unexpected, repeated or of the wrong size; it cannot
// tell values of the right sizes packed by another build or CPU, which a
// cache must rule out by recording what it holds.
func FromPacked(cfg Config, arrays []PackedArray) (*Network, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Precision == gemm.BF16 && !gemm.HasBF16() {
		cfg.Precision = gemm.FP32
	}
	src := packedSource{arrays: make(map[string][]float32, len(arrays))}
	for _, a := range arrays {
		if _, dup := src.arrays[a.Name]; dup {
			return nil, fmt.Errorf("packed weights: %s appears twice", a.Name)
		}
		src.arrays[a.Name] = a.Values
	}
	m := cfg.assemble(&src)
	head := cfg.arch().head
	m.head = ops.Linear{In: cfg.Features(), Out: cfg.Classes,
		Weight: src.take(head+".weight", cfg.Classes*cfg.Features()),
		Bias:   src.take(head+".bias", cfg.Classes)}
	for name := range src.arrays {
		src.errs = append(src.errs, fmt.Errorf("%s: unexpected", name))
	}
	if err := errors.Join(src.errs...); err != nil {
		return nil, fmt.Errorf("packed weights do not match the model: %w", err)
	}
	return m, nil
}

// packedSource makes convs from packed arrays, taking each array out of
// the map as it is used and collecting the problems.
type packedSource struct {
	arrays map[string][]float32
	errs   []error
}

// take removes and returns the array name, which must hold size values
// (any number when size < 0).
func (p *packedSource) take(name string, size int) []float32 {
	v, ok := p.arrays[name]
	switch {
	case !ok:
		p.errs = append(p.errs, fmt.Errorf("%s: missing", name))
	case size >= 0 && len(v) != size:
		p.errs = append(p.errs, fmt.Errorf("%s: %d values, want %d", name, len(v), size))
	}
	delete(p.arrays, name)
	return v
}

func (p *packedSource) convBN(s convSpec, relu bool, prec gemm.Precision) ops.Conv2d {
	c := s.op(relu, prec)
	c.Bias = p.take(s.conv+".bias", s.out)
	values := make([][]float32, s.groups)
	for g := range values {
		values[g] = p.take(packedName(s, g), -1)
	}
	if err := c.UsePacked(values); err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %w", s.conv, err))
	}
	return c
}
