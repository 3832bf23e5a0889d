package model

import (
	"fmt"

	"github.com/res2net/res2net/pkg/ops"
)

// InferConfig reads the widths of a checkpoint with the Res2Net-50 layout
// (the blocks and scale of Res2Net50) from the shapes of a few of its
// tensors: the stem's channels, each stage's planes and split width, and the
// classes. It lets narrower models of the same layout, such as the tiny
// test fixtures, run unchanged; New still checks every tensor against the
// result.
func InferConfig(tensors map[string]*ops.Tensor) (Config, error) {
	cfg := Res2Net50()
	dim := func(key string, axis int) (int, error) {
		t, ok := tensors[key]
		if !ok {
			return 0, fmt.Errorf("infer config: missing %s", key)
		}
		if len(t.Shape) <= axis {
			return 0, fmt.Errorf("infer config: %s has shape %s", key, ops.ShapeString(t.Shape))
		}
		return t.Shape[axis], nil
	}
	var err error
	if cfg.StemChannels, err = dim("features.0.weight", 0); err != nil {
		return cfg, err
	}
	if cfg.Classes, err = dim("head.weight", 0); err != nil {
		return cfg, err
	}
	var widths [4]int
	for s := range 4 {
		out, err := dim(fmt.Sprintf("features.%d.0.conv.4.weight", s+4), 0)
		if err != nil {
			return cfg, err
		}
		cfg.Planes[s] = out / expansion
		if widths[s], err = dim(fmt.Sprintf("features.%d.0.conv.3.conv.0.0.weight", s+4), 0); err != nil {
			return cfg, err
		}
	}
	// The widths only fix BaseWidth to a range; the smallest value that
	// gives all four builds the same network as any other in the range.
	for bw := 1; bw <= 64*64; bw++ {
		cfg.BaseWidth = bw
		if cfg.width(0) == widths[0] && cfg.width(1) == widths[1] && cfg.width(2) == widths[2] && cfg.width(3) == widths[3] {
			return cfg, cfg.Validate()
		}
	}
	return cfg, fmt.Errorf("infer config: no base width gives split widths %v for planes %v", widths, cfg.Planes)
}
