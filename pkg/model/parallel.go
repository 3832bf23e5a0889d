package model

import (
	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/ops/gemm"
)

// The light passes between the convs (pooling, the cascade's adds, the
// carried-over split) spread over the group's threads like the convs'
// products: at batch 1 on two threads they are otherwise ~10 % of the
// time on one core while the other waits. gemm.Parallel hands the ranges
// to the GEMM's workers, which are still polling after the last product;
// the jobs live in the workspace, so that calls allocate nothing.

// passes are the jobs of a workspace's light passes.
type passes struct {
	pool poolJob
	add  addJob
	copy copyJob
}

// poolJob pools planes of h x w values of src into dst.
type poolJob struct {
	p        ops.Pool2d
	avg      bool
	dst, src []float32
	h, w     int
}

func (j *poolJob) Run(lo, hi int) {
	oh, ow := j.p.OutSize(j.h, j.w)
	dst, src := j.dst[lo*oh*ow:], j.src[lo*j.h*j.w:]
	if j.avg {
		j.p.Avg(dst, src, hi-lo, j.h, j.w)
	} else {
		j.p.Max(dst, src, hi-lo, j.h, j.w)
	}
}

// addJob stores a + b into dst.
type addJob struct{ dst, a, b []float32 }

func (j *addJob) Run(lo, hi int) { ops.Add(j.dst[lo:hi], j.a[lo:hi], j.b[lo:hi]) }

// copyJob copies src into dst.
type copyJob struct{ dst, src []float32 }

func (j *copyJob) Run(lo, hi int) { copy(j.dst[lo:hi], j.src[lo:hi]) }

// maxPool computes p.Max of planes h x w planes of src into dst.
func (ws *workspace) maxPool(p ops.Pool2d, dst, src []float32, planes, h, w int) {
	ws.passes.pool = poolJob{p: p, dst: dst, src: src, h: h, w: w}
	gemm.Parallel(ws.conv.Threads, planes, &ws.passes.pool)
}

// avgPool computes p.Avg of planes h x w planes of src into dst.
func (ws *workspace) avgPool(p ops.Pool2d, dst, src []float32, planes, h, w int) {
	ws.passes.pool = poolJob{p: p, avg: true, dst: dst, src: src, h: h, w: w}
	gemm.Parallel(ws.conv.Threads, planes, &ws.passes.pool)
}

// add stores a + b into dst (len(a) values).
func (ws *workspace) add(dst, a, b []float32) {
	ws.passes.add = addJob{dst: dst, a: a, b: b}
	gemm.Parallel(ws.conv.Threads, len(a), &ws.passes.add)
}

// copy copies src into dst (len(src) values).
func (ws *workspace) copy(dst, src []float32) {
	ws.passes.copy = copyJob{dst: dst, src: src}
	gemm.Parallel(ws.conv.Threads, len(src), &ws.passes.copy)
}
