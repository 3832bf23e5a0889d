package model

import (
	"fmt"
	"github.com/res2net/res2net/pkg/ops/gemm"
	"slices"
	"strings"

	"github.com/res2net/res2net/pkg/ops"
)

// Network is a Res2Net ready for inference: its configuration and its
// weights, BatchNorm folded into the convs and packed for the GEMM. It is
// immutable after New, so any number of goroutines may share one Network,
// each through its own Runner: the weights are held once however many
// inferences are in flight.
type Network struct {
	cfg    Config
	stem   []ops.Conv2d // conv, BN, ReLU: one 7x7 stride-2, or the deep stem's three 3x3
	pool   ops.Pool2d   // 3x3 stride-2 max pool
	stages [4][]bottle2neck
	head   ops.Linear // after the global average pool
}

// New builds the network described by cfg from a state dict (key to tensor,
// as pkg/checkpoint loads it). When cfg.Classes is 0 it is read from the
// head's weight. Every missing key, unexpected key and wrong shape is
// reported in one error; num_batches_tracked entries are ignored. New folds
// each BatchNorm into its conv by rescaling the conv weight tensors in
// place, then packs the weights for the GEMM and releases the conv weight
// tensors (their Data becomes nil), so that the network's weights are held
// once; the tensors must not be used afterwards.
func New(cfg Config, tensors map[string]*ops.Tensor) (*Network, error) {
	if cfg.Classes == 0 {
		name := cfg.arch().head + ".weight"
		head, ok := tensors[name]
		if !ok || len(head.Shape) != 2 {
			return nil, fmt.Errorf("cannot infer the number of classes: state dict has no 2-D %s", name)
		}
		cfg.Classes = head.Shape[0]
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := check(cfg.StateDict(), tensors); err != nil {
		return nil, err
	}

	if cfg.Precision == gemm.BF16 && !gemm.HasBF16() {
		cfg.Precision = gemm.FP32
	}
	t := stateDict(tensors)
	m := cfg.assemble(t)
	a := cfg.arch()
	head := t[a.head+".weight"]
	m.head = ops.Linear{In: head.Shape[1], Out: head.Shape[0], Weight: head.Data, Bias: t[a.head+".bias"].Data}
	return m, nil
}

// convSource makes the convs of a network, BatchNorm folded in and packed
// for prec: from a state dict (New) or from packed weights (FromPacked).
type convSource interface {
	convBN(s convSpec, relu bool, prec gemm.Precision) ops.Conv2d
}

// assemble lays out the network cfg describes with convs from src, all
// but its head.
func (cfg Config) assemble(src convSource) *Network {
	a := cfg.arch()
	a.setColumns(cfg.Summary(referenceCrop, referenceCrop))
	m := &Network{cfg: cfg, pool: a.maxPool}
	for _, s := range a.stem {
		m.stem = append(m.stem, src.convBN(s, true, cfg.Precision))
	}
	for s, stage := range a.stages {
		for _, spec := range stage {
			m.stages[s] = append(m.stages[s], block(src, spec, cfg.Precision))
		}
	}
	return m
}

// referenceCrop is the input size (224x224, ImageNet's evaluation crop)
// the network usually runs at, whose output sizes are the convs' Columns.
const referenceCrop = 224

// setColumns sets the columns of every conv of a from layers, its Summary.
func (a *arch) setColumns(layers []Layer) {
	columns := make(map[string]int)
	for _, l := range layers {
		if l.Type == TypeConv {
			columns[l.Name] = l.OutShape[1] * l.OutShape[2]
		}
	}
	set := func(s *convSpec) { s.columns = columns[s.conv] }
	for i := range a.stem {
		set(&a.stem[i])
	}
	for _, stage := range a.stages {
		for i := range stage {
			b := &stage[i]
			set(&b.reduce)
			for j := range b.branches {
				set(&b.branches[j])
			}
			set(&b.expand)
			if b.downsample != nil {
				set(b.downsample)
			}
		}
	}
}

// check compares a state dict with the expected parameters and lists every
// problem, so a user fixing a checkpoint sees them all at once.
func check(want []Param, tensors map[string]*ops.Tensor) error {
	var problems []string
	expected := make(map[string]bool, len(want))
	for _, p := range want {
		expected[p.Name] = true
		t, ok := tensors[p.Name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: missing (shape %s expected)", p.Name, ops.ShapeString(p.Shape)))
		case !ops.SameShape(t.Shape, p.Shape):
			problems = append(problems, fmt.Sprintf("%s: shape %s expected, checkpoint has %s",
				p.Name, ops.ShapeString(p.Shape), ops.ShapeString(t.Shape)))
		case len(t.Data) != ops.NumElements(t.Shape):
			problems = append(problems, fmt.Sprintf("%s: shape %s but %d values", p.Name, ops.ShapeString(t.Shape), len(t.Data)))
		}
	}
	var unexpected []string
	for name, t := range tensors {
		if !expected[name] && !strings.HasSuffix(name, "num_batches_tracked") {
			unexpected = append(unexpected, fmt.Sprintf("%s: unexpected (shape %s)", name, ops.ShapeString(t.Shape)))
		}
	}
	slices.Sort(unexpected)
	problems = append(problems, unexpected...)
	if len(problems) > 0 {
		return fmt.Errorf("state dict does not match the model (%d problems):\n  %s",
			len(problems), strings.Join(problems, "\n  "))
	}
	return nil
}

// stateDict reads checked tensors by name while building the model.
type stateDict map[string]*ops.Tensor

// convBN returns the conv s with its BatchNorm folded in, and its ReLU
// (if any) to run in the same pass, packed for products in prec.
func (t stateDict) convBN(s convSpec, relu bool, prec gemm.Precision) ops.Conv2d {
	w := t[s.conv+".weight"]
	c := s.op(relu, prec)
	c.Weight = w.Data
	ops.BatchNorm{
		Weight: t[s.bn+".weight"].Data,
		Bias:   t[s.bn+".bias"].Data,
		Mean:   t[s.bn+".running_mean"].Data,
		Var:    t[s.bn+".running_var"].Data,
		Eps:    bnEps,
	}.FoldInto(&c)
	c.Pack()
	w.Data = nil // packed: let the collector have the unpacked copy
	return c
}

// op returns the conv s describes, without weights.
func (s convSpec) op(relu bool, prec gemm.Precision) ops.Conv2d {
	return ops.Conv2d{InC: s.in, OutC: s.out, Kernel: s.kernel, Stride: s.stride, Pad: s.pad, Groups: s.groups,
		ReLU: relu, Precision: prec, Columns: s.columns}
}

// block builds one Bottle2neck with its convs from src in prec.
func block(src convSource, spec blockSpec, prec gemm.Precision) bottle2neck {
	b := bottle2neck{
		reduce: src.convBN(spec.reduce, true, prec),
		unit:   multiScale{width: spec.width, scale: spec.scale, cascade: spec.cascade, pool: spec.splitPool},
		// ReLU after the residual add, which runs in the same epilogue.
		expand:    src.convBN(spec.expand, true, prec),
		shortPool: spec.shortPool,
	}
	for _, br := range spec.branches {
		b.unit.branches = append(b.unit.branches, src.convBN(br, true, prec))
	}
	if spec.downsample != nil {
		ds := src.convBN(*spec.downsample, false, prec)
		b.downsample = &ds
	}
	return b
}

// Config returns the configuration, with Classes filled in.
func (m *Network) Config() Config { return m.cfg }

// Head returns the classifier, Features() -> Classes inputs to outputs. Its
// weights are the network's own: callers must not modify them.
func (m *Network) Head() ops.Linear { return m.head }

// Features is the number of pooled features the head takes, the channel
// count of the last stage's output.
func (m *Network) Features() int { return m.head.In }

// OutSize returns the height and width of the last stage's output (the
// feature maps) for an h x w input.
func (m *Network) OutSize(h, w int) (oh, ow int) {
	for i := range m.stem {
		h, w = m.stem[i].OutSize(h, w)
	}
	h, w = m.pool.OutSize(h, w)
	for _, stage := range m.stages {
		for i := range stage {
			h, w = stage[i].unit.branches[0].OutSize(h, w)
		}
	}
	return h, w
}
