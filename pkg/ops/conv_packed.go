package ops

import (
	"fmt"

	"github.com/res2net/res2net/pkg/ops/gemm"
)

// PackedValues returns the values of the weights Pack packed, one slice
// per group (see gemm.PackedA.Values), or nil before Pack: what a cache of
// packed weights stores. The caller must not modify them.
func (c *Conv2d) PackedValues() [][]float32 {
	if c.packed == nil {
		return nil
	}
	out := make([][]float32, len(c.packed))
	for g, p := range c.packed {
		out[g] = p.Values()
	}
	return out
}

// UsePacked makes values, as PackedValues returned them for a conv of the
// same shape, Precision and Columns packed on this CPU by this build, c's
// packed weights, in place of Weight and Pack. The values are used in
// place and never written (they may be read-only memory). It fails unless
// there is one slice per group of the size of that group's layout.
func (c *Conv2d) UsePacked(values [][]float32) error {
	g, k := c.groups(), c.groupK()
	if len(values) != g {
		return fmt.Errorf("%d packed groups for a conv of %d", len(values), g)
	}
	packed := make([]*gemm.PackedA, g)
	for i, v := range values {
		p, err := gemm.PackedFromValues(c.packOptions(), c.OutC/g, k, v)
		if err != nil {
			return fmt.Errorf("group %d: %w", i, err)
		}
		packed[i] = p
	}
	c.packed, c.Weight = packed, nil
	return nil
}
