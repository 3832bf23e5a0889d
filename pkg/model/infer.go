package model

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"

	"github.com/res2net/res2net/pkg/ops"
)

// Infer reads a state dict's layout and whole configuration (blocks per
// stage, planes, stem, split width, scale, cardinality, shortcut, classes)
// from its keys and shapes, for a checkpoint of any Res2Net in the Holocron
// or the timm naming. It reads only what decides the configuration; New
// then checks every tensor against the result, so a damaged file is
// reported there key by key. Infer fails when the keys follow neither
// layout or the shapes that decide the configuration are missing or
// inconsistent.
func Infer(tensors map[string]*ops.Tensor) (Config, error) {
	var l layoutKeys
	switch {
	case has(tensors, "features.0.weight"):
		l = holocronKeys
	case has(tensors, "conv1.weight"), has(tensors, "conv1.0.weight"):
		l = timmKeys
	default:
		return Config{}, errors.New("infer config: no Res2Net stem: neither features.0.weight (Holocron) " +
			"nor conv1.weight / conv1.0.weight (timm) in the state dict")
	}
	cfg := Config{Layout: l.layout, Cardinality: 1}
	dim := func(key string, rank, axis int) (int, error) {
		t, ok := tensors[key]
		if !ok {
			return 0, fmt.Errorf("infer config: missing %s", key)
		}
		if len(t.Shape) != rank {
			return 0, fmt.Errorf("infer config: %s has shape %s, want %d dimensions", key, ops.ShapeString(t.Shape), rank)
		}
		return t.Shape[axis], nil
	}
	var err error
	if has(tensors, "conv1.0.weight") {
		cfg.Stem = StemDeep
		if cfg.StemWidth, err = dim("conv1.0.weight", 4, 0); err != nil {
			return cfg, err
		}
		if cfg.StemChannels, err = dim("conv1.6.weight", 4, 0); err != nil {
			return cfg, err
		}
	} else if cfg.StemChannels, err = dim(l.stem, 4, 0); err != nil {
		return cfg, err
	}
	if cfg.Classes, err = dim(l.head, 2, 0); err != nil {
		return cfg, err
	}

	// Blocks and branches counted from the highest index among all keys,
	// so that a missing key shows in New's report, not as a shorter network.
	blocks, branches := [4]int{}, 0
	for key := range tensors {
		if m := l.block.FindStringSubmatch(key); m != nil {
			s, _ := strconv.Atoi(m[1])
			b, _ := strconv.Atoi(m[2])
			if s -= l.firstStage; s >= 0 && s < 4 {
				blocks[s] = max(blocks[s], b+1)
			}
		}
		if m := l.branch.FindStringSubmatch(key); m != nil {
			i, _ := strconv.Atoi(m[1])
			branches = max(branches, i+1)
		}
	}
	// A hostile key such as layer1.99999999.x must not size the network.
	if slices.Max(blocks[:]) > maxIndex || branches > maxIndex {
		return cfg, fmt.Errorf("infer config: block or branch index beyond %d in the keys", maxIndex-1)
	}
	cfg.Layers = blocks
	var widths [4]int
	for s := range 4 {
		if blocks[s] == 0 {
			return cfg, fmt.Errorf("infer config: no blocks in stage %d", s+1)
		}
		out, err := dim(l.expand(s), 4, 0)
		if err != nil {
			return cfg, err
		}
		cfg.Planes[s] = out / expansion
		if widths[s], err = dim(l.firstBranch(s), 4, 0); err != nil {
			return cfg, err
		}
		perGroup, _ := dim(l.firstBranch(s), 4, 1)
		inner, err := dim(l.reduce(s), 4, 0)
		if err != nil {
			return cfg, err
		}
		if perGroup < 1 || widths[s]%perGroup != 0 || inner%widths[s] != 0 {
			return cfg, fmt.Errorf("infer config: stage %d: branch conv %s of a %d-channel unit fits no scale or cardinality",
				s+1, ops.ShapeString(tensors[l.firstBranch(s)].Shape), inner)
		}
		if s == 0 {
			cfg.Cardinality, cfg.Scale = widths[s]/perGroup, inner/widths[s]
		}
	}
	if want := max(1, cfg.Scale-1); branches != want {
		return cfg, fmt.Errorf("infer config: %d branch convs for scale %d, want %d", branches, cfg.Scale, want)
	}
	// timm's avg_down shortcut keeps its conv at downsample.1 (downsample.0
	// is the pool); look at the first block that has a shortcut.
	for s := range 4 {
		// In the conv shortcut, downsample.1 is the BatchNorm, a vector.
		if t, ok := tensors[l.avgShortcut(s)]; ok && len(t.Shape) == 4 {
			cfg.Shortcut = ShortcutAvgPool
			break
		}
	}

	// The widths fix BaseWidth to a range; the smallest value that gives
	// all four builds the same network as any other in the range.
	for bw := 1; bw <= 64*64; bw++ {
		cfg.BaseWidth = bw
		if cfg.width(0) == widths[0] && cfg.width(1) == widths[1] && cfg.width(2) == widths[2] && cfg.width(3) == widths[3] {
			return cfg, cfg.Validate()
		}
	}
	return cfg, fmt.Errorf("infer config: no base width gives split widths %v for planes %v and cardinality %d",
		widths, cfg.Planes, cfg.Cardinality)
}

// maxIndex bounds the block and branch indices Infer accepts: ten times
// the deepest published Res2Net (23 blocks) and the widest scale (8).
const maxIndex = 256

func has(tensors map[string]*ops.Tensor, key string) bool {
	_, ok := tensors[key]
	return ok
}

// layoutKeys is what Infer reads in one layout: stage s counts from 0.
type layoutKeys struct {
	layout      Layout
	stem, head  string         // weights giving the stem's channels and the classes
	block       *regexp.Regexp // any key of a block: stage and block index
	branch      *regexp.Regexp // a branch conv's weight: its index
	firstStage  int            // the index of stage 1 in block keys
	expand      func(s int) string
	reduce      func(s int) string
	firstBranch func(s int) string
	avgShortcut func(s int) string // the conv weight of an avg-pool shortcut (none in the Holocron layout)
}

var (
	holocronKeys = layoutKeys{
		layout: LayoutHolocron, stem: "features.0.weight", head: "head.weight",
		block:       regexp.MustCompile(`^features\.(\d+)\.(\d+)\.`),
		branch:      regexp.MustCompile(`^features\.\d+\.\d+\.conv\.3\.conv\.(\d+)\.0\.weight$`),
		firstStage:  4,
		expand:      func(s int) string { return fmt.Sprintf("features.%d.0.conv.4.weight", s+4) },
		reduce:      func(s int) string { return fmt.Sprintf("features.%d.0.conv.0.weight", s+4) },
		firstBranch: func(s int) string { return fmt.Sprintf("features.%d.0.conv.3.conv.0.0.weight", s+4) },
		avgShortcut: func(int) string { return "" }, // no such key
	}
	timmKeys = layoutKeys{
		layout: LayoutTimm, stem: "conv1.weight", head: "fc.weight",
		block:       regexp.MustCompile(`^layer(\d+)\.(\d+)\.`),
		branch:      regexp.MustCompile(`^layer\d+\.\d+\.convs\.(\d+)\.weight$`),
		firstStage:  1,
		expand:      func(s int) string { return fmt.Sprintf("layer%d.0.conv3.weight", s+1) },
		reduce:      func(s int) string { return fmt.Sprintf("layer%d.0.conv1.weight", s+1) },
		firstBranch: func(s int) string { return fmt.Sprintf("layer%d.0.convs.0.weight", s+1) },
		avgShortcut: func(s int) string { return fmt.Sprintf("layer%d.0.downsample.1.weight", s+1) },
	}
)
