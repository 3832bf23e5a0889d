package model

import "github.com/res2net/res2net/pkg/ops"

// workspace holds the activations of one group of images in flight, sized
// for the largest layer at one group and input size, so that Forward
// allocates nothing per layer: the buffers are reused by every block and
// every Forward call. All are channel-major (C x N x H x W). It also holds
// what the group's convs run with, its im2col scratch and GEMM threads.
type workspace struct {
	input     []float32 // the group's images, channel-major (when more than one)
	x, y      []float32 // a block's input and output, swapped after each block
	splits    []float32 // conv.0 output: the multi-scale unit's input
	unit      []float32 // conv.3 output: the concatenated branch results
	cascade   []float32 // a branch's input out[i-1] + split[i]
	shortcut  []float32 // downsample output
	shortPool []float32 // the shortcut's average pool output, the downsample's input
	conv      ops.Exec  // im2col scratch, and the GEMM threads Forward gives the group
	pooled    []float32 // global average pool output, channel-major
	features  []float32 // one image's pooled features, the head's input
	passes    passes    // the jobs that spread pooling, adds and copies over the threads
}

// newWorkspace sizes a workspace by walking the network for n h x w images
// the way forwardGroup and bottle2neck.forward use the buffers.
func (m *Network) newWorkspace(n, h, w int) *workspace {
	var act, splits, unit, cascade, shortcut, shortPool, col int
	need := func(size *int, v int) { *size = max(*size, n*v) }
	// Not n times one image's: wide convs take their images one by one.
	needCol := func(c *ops.Conv2d, h, w int) { col = max(col, c.ColSize(n, h, w)) }

	input := n * inChannels * h * w
	if n == 1 {
		input = 0 // the image is already channel-major
	}
	for i := range m.stem {
		needCol(&m.stem[i], h, w)
		h, w = m.stem[i].OutSize(h, w)
		need(&act, m.stem[i].OutC*h*w)
	}
	h, w = m.pool.OutSize(h, w)
	for _, stage := range m.stages {
		for i := range stage {
			b := &stage[i]
			needCol(&b.reduce, h, w)
			need(&splits, b.reduce.OutC*h*w)
			for j := range b.unit.branches {
				needCol(&b.unit.branches[j], h, w)
			}
			need(&cascade, b.unit.width*h*w)
			if b.downsample != nil {
				dh, dw := h, w
				if b.shortPool != nil {
					dh, dw = b.shortPool.OutSize(h, w)
					need(&shortPool, b.downsample.InC*dh*dw)
				}
				needCol(b.downsample, dh, dw)
			}
			h, w = b.unit.branches[0].OutSize(h, w)
			need(&unit, b.expand.InC*h*w)
			need(&shortcut, b.expand.OutC*h*w)
			needCol(&b.expand, h, w)
			need(&act, b.expand.OutC*h*w)
		}
	}
	return &workspace{
		input:     make([]float32, input),
		x:         make([]float32, act),
		y:         make([]float32, act),
		splits:    make([]float32, splits),
		unit:      make([]float32, unit),
		cascade:   make([]float32, cascade),
		shortcut:  make([]float32, shortcut),
		shortPool: make([]float32, shortPool),
		conv:      ops.Exec{Col: make([]float32, col)},
		pooled:    make([]float32, n*m.head.In),
		features:  make([]float32, m.head.In),
	}
}
