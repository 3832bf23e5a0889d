package model

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/res2net/res2net/pkg/ops"
)

// Model is a Res2Net ready for inference: BatchNorm folded into the convs,
// buffers reused across calls. A Model is not safe for concurrent use; it
// parallelises each Forward itself (see SetThreads). Separate Models may
// run at the same time: each keeps its own buffers and thread count.
type Model struct {
	cfg    Config
	stem   ops.Conv2d // features.0-2: 7x7 stride-2 conv, BN, ReLU
	pool   ops.Pool2d // features.3: 3x3 stride-2 max pool
	stages [4][]bottle2neck
	head   ops.Linear // head, after the global average pool

	threads      int
	work         []*workspace // one per group of images in flight
	workN        int          // the group size work is sized for
	workH, workW int          // the input size work is sized for
}

// maxGroup bounds the images one workspace runs together, and so its
// size: about 20 MB per image at 224x224. Beyond 8 the late layers gain
// little more from batching.
const maxGroup = 8

// New builds the model described by cfg from a state dict (key to tensor, as
// pkg/checkpoint loads it). When cfg.Classes is 0 it is read from head.weight.
// Every missing key, unexpected key and wrong shape is reported in one
// error; num_batches_tracked entries are ignored. New folds each BatchNorm
// into its conv by rescaling the conv weight tensors in place, then packs
// the weights for the GEMM and releases the conv weight tensors (their Data
// becomes nil), so that the network's weights are held once; the tensors
// must not be used afterwards.
func New(cfg Config, tensors map[string]*ops.Tensor) (*Model, error) {
	if cfg.Classes == 0 {
		head, ok := tensors["head.weight"]
		if !ok || len(head.Shape) != 2 {
			return nil, fmt.Errorf("cannot infer the number of classes: state dict has no 2-D head.weight")
		}
		cfg.Classes = head.Shape[0]
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := check(cfg.StateDict(), tensors); err != nil {
		return nil, err
	}

	t := stateDict(tensors)
	m := &Model{
		cfg:     cfg,
		stem:    t.convBN("features.0", "features.1", 2, 3, true),
		pool:    ops.Pool2d{Kernel: 3, Stride: 2, Pad: 1},
		threads: runtime.GOMAXPROCS(0),
	}
	for s, stage := range cfg.stages() {
		for _, spec := range stage {
			m.stages[s] = append(m.stages[s], t.block(spec))
		}
	}
	head := t["head.weight"]
	m.head = ops.Linear{In: head.Shape[1], Out: head.Shape[0], Weight: head.Data, Bias: t["head.bias"].Data}
	return m, nil
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

// convBN returns the conv stored under conv with the BatchNorm stored under
// bn folded in, and its ReLU (if any) to run in the same pass.
func (t stateDict) convBN(conv, bn string, stride, pad int, relu bool) ops.Conv2d {
	w := t[conv+".weight"]
	c := ops.Conv2d{InC: w.Shape[1], OutC: w.Shape[0], Kernel: w.Shape[2], Stride: stride, Pad: pad,
		Weight: w.Data, ReLU: relu}
	ops.BatchNorm{
		Weight: t[bn+".weight"].Data,
		Bias:   t[bn+".bias"].Data,
		Mean:   t[bn+".running_mean"].Data,
		Var:    t[bn+".running_var"].Data,
		Eps:    bnEps,
	}.FoldInto(&c)
	c.Pack()
	w.Data = nil // packed: let the collector have the unpacked copy
	return c
}

// block builds one Bottle2neck.
func (t stateDict) block(spec blockSpec) bottle2neck {
	b := bottle2neck{
		reduce: t.convBN(spec.name+".conv.0", spec.name+".conv.1", 1, 0, true),
		unit:   multiScale{width: spec.width, scale: spec.scale, cascade: !spec.downsample},
		// ReLU after the residual add, which runs in the same epilogue.
		expand: t.convBN(spec.name+".conv.4", spec.name+".conv.5", 1, 0, true),
	}
	for i := range spec.branches() {
		br := fmt.Sprintf("%s.conv.3.conv.%d", spec.name, i)
		b.unit.branches = append(b.unit.branches, t.convBN(br+".0", br+".1", spec.stride, 1, true))
	}
	if spec.downsample {
		if spec.scale > 1 {
			b.unit.pool = &ops.Pool2d{Kernel: 3, Stride: spec.stride, Pad: 1}
		}
		ds := t.convBN(spec.name+".downsample.0", spec.name+".downsample.1", spec.stride, 0, false)
		b.downsample = &ds
	}
	return b
}

// Config returns the configuration, with Classes filled in.
func (m *Model) Config() Config { return m.cfg }

// SetThreads sets how many threads Forward uses; n < 1 means GOMAXPROCS.
// Forward splits a batch into one group of images per thread and runs the
// groups in parallel: that needs no synchronisation inside the network and
// measured fastest for batches. Each group runs as one batch through every
// layer. When fewer images than threads are left (a single photo, say),
// the GEMMs are split across the threads instead. The count belongs to m
// alone: Forward gives it to each GEMM call and never touches the
// process-wide default (gemm.SetThreads), so Models running at the same
// time keep their own counts.
func (m *Model) SetThreads(n int) {
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	m.threads = n
}

// Forward runs the network on a batch x of N x 3 x H x W normalised images
// and returns the N x Classes logits. Any H, W >= 1 works; the buffers for a
// given input size are allocated on the first call and reused after.
func (m *Model) Forward(x *ops.Tensor) (*ops.Tensor, error) {
	if len(x.Shape) != 4 || x.Shape[1] != inChannels || slices.Min(x.Shape) < 1 {
		return nil, fmt.Errorf("model input has shape %s, want N x %d x H x W", ops.ShapeString(x.Shape), inChannels)
	}
	if len(x.Data) != ops.NumElements(x.Shape) {
		return nil, fmt.Errorf("model input of shape %s has %d values", ops.ShapeString(x.Shape), len(x.Data))
	}
	n, h, w := x.Shape[0], x.Shape[2], x.Shape[3]
	logits := ops.New(n, m.cfg.Classes)
	for start := 0; start < n; {
		// A round of one group per thread; the rest, fewer images than
		// threads, share the threads through the GEMMs.
		workers := min(m.threads, n-start)
		group := min((n-start)/workers, maxGroup)
		m.reserve(workers, group, h, w)
		for _, ws := range m.work[:workers] {
			ws.conv.Threads = m.threads / workers
		}
		if workers == 1 {
			m.forwardGroup(m.work[0], x.Data, logits.Data, start, group, h, w)
		} else {
			var wg sync.WaitGroup
			for k, ws := range m.work[:workers] {
				first := start + k*group
				wg.Go(func() { m.forwardGroup(ws, x.Data, logits.Data, first, group, h, w) })
			}
			wg.Wait()
		}
		start += workers * group
	}
	return logits, nil
}

// reserve makes sure there are count workspaces for groups of n h x w
// inputs.
func (m *Model) reserve(count, n, h, w int) {
	if m.workN < n || m.workH != h || m.workW != w {
		m.work, m.workN, m.workH, m.workW = nil, n, h, w
	}
	for len(m.work) < count {
		m.work = append(m.work, m.newWorkspace(m.workN, h, w))
	}
}

// forwardGroup runs the network on images [first, first+n) of the batch x
// (N x 3 x h x w) and writes their rows of logits. Inside, activations are
// channel-major, C x N x H x W, the layout Conv2d.Forward takes batches in.
func (m *Model) forwardGroup(ws *workspace, x, logits []float32, first, n, h, w int) {
	classes, size := m.cfg.Classes, inChannels*h*w
	imgs, logits := x[first*size:(first+n)*size], logits[first*classes:(first+n)*classes]
	x, y := ws.x, ws.y
	in := imgs
	if n > 1 {
		in = ws.input
		channelMajor(in, imgs, n, inChannels, h*w)
	}

	// Stem: conv 7x7/2 + BN + ReLU, then max pool 3x3/2.
	m.stem.Forward(y, in, n, h, w, nil, ws.conv)
	h, w = m.stem.OutSize(h, w)
	m.pool.Max(x, y, m.stem.OutC*n, h, w)
	h, w = m.pool.OutSize(h, w)
	channels := m.stem.OutC

	// Four stages of Bottle2neck blocks.
	for _, stage := range m.stages {
		for i := range stage {
			h, w = stage[i].forward(ws, y, x, n, h, w)
			channels = stage[i].expand.OutC
			x, y = y, x
		}
	}

	// Head: global average pool, then the linear classifier, per image.
	ops.GlobalAvgPool(ws.pooled, x, channels*n, h*w)
	for i := range n {
		for c := range channels {
			ws.features[c] = ws.pooled[c*n+i]
		}
		m.head.Forward(logits[i*classes:(i+1)*classes], ws.features)
	}
}

// channelMajor copies n images of c planes of hw values from src, image
// after image, into dst, channel after channel.
func channelMajor(dst, src []float32, n, c, hw int) {
	for i := range n {
		for ch := range c {
			copy(dst[(ch*n+i)*hw:(ch*n+i+1)*hw], src[(i*c+ch)*hw:])
		}
	}
}
