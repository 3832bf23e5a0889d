package model

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/res2net/res2net/pkg/ops"
)

// Runner runs a Network: it holds the activation buffers (workspaces),
// reused across calls, and the thread count. A Runner is not safe for
// concurrent use; each goroutine makes its own with Network.NewRunner. It
// parallelises each call itself (see SetThreads). Runners on one Network
// may run at the same time: each keeps its own buffers and thread count.
type Runner struct {
	net          *Network
	threads      int
	work         []*workspace // one per group of images in flight
	workN        int          // the group size work is sized for
	workH, workW int          // the input size work is sized for
	observe      func(c *ops.Conv2d, n, h, w int, took time.Duration)
}

// maxGroup bounds the images one workspace runs together, and so its
// size: about 20 MB per image at 224x224. Beyond 8 the late layers gain
// little more from batching.
const maxGroup = 8

// NewRunner returns a Runner for n using GOMAXPROCS threads. It allocates
// nothing until its first call.
func (m *Network) NewRunner() *Runner {
	return &Runner{net: m, threads: runtime.GOMAXPROCS(0)}
}

// Network returns the network r runs.
func (r *Runner) Network() *Network { return r.net }

// SetThreads sets how many threads each call uses; n < 1 means GOMAXPROCS.
// A call splits a batch into one group of images per thread and runs the
// groups in parallel: that needs no synchronisation inside the network and
// measured fastest for batches. Each group runs as one batch through every
// layer. When fewer images than threads are left (a single photo, say),
// the GEMMs are split across the threads instead. The count belongs to r
// alone: it is given to each GEMM call and the process-wide default
// (gemm.SetThreads) is never touched, so Runners running at the same time
// keep their own counts.
func (r *Runner) SetThreads(n int) {
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	r.threads = n
}

// ObserveConvs makes r's later calls report every conv they run to f, with
// its input's images and size and the time it took (see ops.Exec.Observe),
// or stops that when f is nil: a per-layer profile. When a call runs
// several groups of images at once (a batch on several threads), f is
// called from their goroutines at the same time.
func (r *Runner) ObserveConvs(f func(c *ops.Conv2d, n, h, w int, took time.Duration)) {
	r.observe = f
}

// output selects what a pass over the network returns.
type output int

const (
	outLogits   output = iota // N x Classes, after the head
	outFeatures               // N x Features, the global average pool
	outMaps                   // N x Features x h x w, the last stage
)

// Forward runs the network on a batch x of N x 3 x H x W normalised images
// and returns the N x Classes logits. Any H, W >= 1 works; the buffers for a
// given input size are allocated on the first call and reused after.
func (r *Runner) Forward(x *ops.Tensor) (*ops.Tensor, error) { return r.run(x, outLogits) }

// Embed runs the network without its head and returns the N x Features
// pooled features, the head's input.
func (r *Runner) Embed(x *ops.Tensor) (*ops.Tensor, error) { return r.run(x, outFeatures) }

// FeatureMaps runs the network up to the last stage and returns its output,
// N x Features x h x w (after the block's ReLU, before pooling): for a
// 224x224 input, h = w = 7.
func (r *Runner) FeatureMaps(x *ops.Tensor) (*ops.Tensor, error) { return r.run(x, outMaps) }

// run checks x, sizes the workspaces and runs the groups of images.
func (r *Runner) run(x *ops.Tensor, what output) (*ops.Tensor, error) {
	if len(x.Shape) != 4 || x.Shape[1] != inChannels || slices.Min(x.Shape) < 1 {
		return nil, fmt.Errorf("model input has shape %s, want N x %d x H x W", ops.ShapeString(x.Shape), inChannels)
	}
	if len(x.Data) != ops.NumElements(x.Shape) {
		return nil, fmt.Errorf("model input of shape %s has %d values", ops.ShapeString(x.Shape), len(x.Data))
	}
	n, h, w := x.Shape[0], x.Shape[2], x.Shape[3]
	out := r.net.newOutput(what, n, h, w)
	size, per := inChannels*h*w, ops.NumElements(out.Shape[1:]) // values per image in and out
	for start := 0; start < n; {
		// A round of one group per thread; the rest, fewer images than
		// threads, share the threads through the GEMMs.
		workers := min(r.threads, n-start)
		group := min((n-start)/workers, maxGroup)
		r.reserve(workers, group, h, w)
		for _, ws := range r.work[:workers] {
			ws.conv.Threads = r.threads / workers
			ws.conv.Observe = r.observe
		}
		if workers == 1 {
			r.net.forwardGroup(r.work[0], out.Data[start*per:], x.Data[start*size:], group, h, w, what)
		} else {
			var wg sync.WaitGroup
			for k, ws := range r.work[:workers] {
				first := start + k*group
				wg.Go(func() { r.net.forwardGroup(ws, out.Data[first*per:], x.Data[first*size:], group, h, w, what) })
			}
			wg.Wait()
		}
		start += workers * group
	}
	return out, nil
}

// newOutput allocates the result of run for n h x w images.
func (m *Network) newOutput(what output, n, h, w int) *ops.Tensor {
	switch what {
	case outFeatures:
		return ops.New(n, m.Features())
	case outMaps:
		oh, ow := m.OutSize(h, w)
		return ops.New(n, m.Features(), oh, ow)
	}
	return ops.New(n, m.cfg.Classes)
}

// reserve makes sure there are count workspaces for groups of n h x w
// inputs.
func (r *Runner) reserve(count, n, h, w int) {
	if r.workN < n || r.workH != h || r.workW != w {
		r.work, r.workN, r.workH, r.workW = nil, n, h, w
	}
	for len(r.work) < count {
		r.work = append(r.work, r.net.newWorkspace(r.workN, h, w))
	}
}

// forwardGroup runs the network on the first n images of imgs
// (n x 3 x h x w) and writes what was asked into out, image after image. Inside, activations
// are channel-major, C x N x H x W, the layout Conv2d.Forward takes
// batches in.
func (m *Network) forwardGroup(ws *workspace, out, imgs []float32, n, h, w int, what output) {
	imgs = imgs[:n*inChannels*h*w]
	x, y := ws.x, ws.y
	in := imgs
	if n > 1 {
		in = ws.input
		transpose(in, imgs, n, inChannels, h*w)
	}

	// Stem: its convs (+ BN + ReLU) from buffer to buffer, then the max
	// pool into x, where the first block reads.
	for i := range m.stem {
		dst := y
		if i%2 == 1 {
			dst = x
		}
		m.stem[i].Forward(dst, in, n, h, w, nil, ws.conv)
		h, w = m.stem[i].OutSize(h, w)
		in = dst
	}
	channels := m.stem[len(m.stem)-1].OutC
	if len(m.stem)%2 == 0 {
		x, y = y, x
	}
	ws.maxPool(m.pool, x, in, channels*n, h, w)
	h, w = m.pool.OutSize(h, w)

	// Four stages of Bottle2neck blocks.
	for _, stage := range m.stages {
		for i := range stage {
			h, w = stage[i].forward(ws, y, x, n, h, w)
			channels = stage[i].expand.OutC
			x, y = y, x
		}
	}
	if what == outMaps {
		transpose(out, x, channels, n, h*w)
		return
	}

	// Head: global average pool, then the linear classifier, per image.
	ops.GlobalAvgPool(ws.pooled, x, channels*n, h*w)
	if what == outFeatures {
		transpose(out, ws.pooled, channels, n, 1)
		return
	}
	classes := m.cfg.Classes
	for i := range n {
		for c := range channels {
			ws.features[c] = ws.pooled[c*n+i]
		}
		m.head.Forward(out[i*classes:(i+1)*classes], ws.features)
	}
}

// transpose copies an a x b array of planes of hw values from src into dst
// as b x a: images after images (N x C) into channel-major order (C x N),
// or back.
func transpose(dst, src []float32, a, b, hw int) {
	for i := range a {
		for j := range b {
			copy(dst[(j*a+i)*hw:(j*a+i+1)*hw], src[(i*b+j)*hw:])
		}
	}
}
