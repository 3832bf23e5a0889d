package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/res2net/res2net/pkg/classify"
	"github.com/res2net/res2net/pkg/ops"
)

// errQueueFull is returned when a request's images do not fit in the
// queue; the client should retry later (503).
var errQueueFull = errors.New("the queue is full")

// errClosed is returned for work submitted while the server shuts down.
var errClosed = errors.New("the server is shutting down")

// job is one image waiting for the network.
type job struct {
	ctx    context.Context
	input  []float32 // C*H*W values
	logits []float32 // filled by the worker
	err    error
	done   chan struct{}
}

// batcher merges the images of concurrent requests for one model into
// batches: a worker takes the first waiting image, then waits at most
// maxDelay for up to maxBatch-1 more, and runs them in one forward pass.
// Each worker has its own runner (run buffers) over the one shared network.
type batcher struct {
	model    string
	size     int // values per image
	shape    [3]int
	classes  int
	maxBatch int
	maxDelay time.Duration
	metrics  *metrics

	// pending counts the images admitted and not yet taken by a worker;
	// admission keeps it at most cap(queue), so sends never block.
	pending atomic.Int64
	mu      sync.RWMutex // held for reading while sending, for writing to close
	closed  bool
	queue   chan *job
	workers sync.WaitGroup
}

func newBatcher(model string, c *classify.Classifier, opts *Options, m *metrics) *batcher {
	shape := c.InputShape()
	bt := &batcher{
		model:    model,
		size:     ops.NumElements(shape),
		shape:    [3]int{shape[0], shape[1], shape[2]},
		classes:  len(c.Labels()),
		maxBatch: opts.MaxBatch,
		maxDelay: opts.MaxDelay,
		metrics:  m,
		queue:    make(chan *job, opts.Queue),
	}
	for range opts.Workers {
		r := c.NewRunner(opts.Threads)
		bt.workers.Go(func() { bt.run(r) })
	}
	return bt
}

// infer queues the images (each of b.size values) and waits for their
// logits. It fails at once with errQueueFull when they do not all fit, and
// returns ctx's error when ctx ends first; the worker then skips the
// images still queued.
func (b *batcher) infer(ctx context.Context, inputs [][]float32) ([][]float32, error) {
	jobs := make([]*job, len(inputs))
	if err := b.enqueue(ctx, inputs, jobs); err != nil {
		return nil, err
	}
	out := make([][]float32, len(jobs))
	for i, j := range jobs {
		select {
		case <-j.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if j.err != nil {
			return nil, j.err
		}
		out[i] = j.logits
	}
	return out, nil
}

func (b *batcher) enqueue(ctx context.Context, inputs [][]float32, jobs []*job) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return errClosed
	}
	n := int64(len(inputs))
	if b.pending.Add(n) > int64(cap(b.queue)) {
		b.pending.Add(-n)
		b.metrics.rejected.WithLabelValues(b.model).Add(float64(n))
		return errQueueFull
	}
	b.metrics.queueDepth.WithLabelValues(b.model).Add(float64(n))
	for i, x := range inputs {
		jobs[i] = &job{ctx: ctx, input: x, done: make(chan struct{})}
		b.queue <- jobs[i]
	}
	return nil
}

// close stops the worker once the queued images are done. No image may be
// submitted after.
func (b *batcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	b.workers.Wait()
}

// run is a worker's loop.
func (b *batcher) run(r *classify.Runner) {
	buf := make([]float32, b.maxBatch*b.size)
	batch := make([]*job, 0, b.maxBatch)
	for first := range b.queue {
		batch = b.take(batch[:0], first)
		timer := time.NewTimer(b.maxDelay)
	fill:
		for len(batch) < b.maxBatch {
			select {
			case j, ok := <-b.queue:
				if !ok {
					break fill
				}
				batch = b.take(batch, j)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		b.forward(r, batch, buf)
	}
}

// take accounts for a job leaving the queue and adds it to batch unless its
// request has gone.
func (b *batcher) take(batch []*job, j *job) []*job {
	b.pending.Add(-1)
	b.metrics.queueDepth.WithLabelValues(b.model).Dec()
	if err := j.ctx.Err(); err != nil {
		b.drop(j, err)
		return batch
	}
	return append(batch, j)
}

// drop ends a job whose client has gone without running it.
func (b *batcher) drop(j *job, err error) {
	b.metrics.dropped.WithLabelValues(b.model).Inc()
	j.err = err
	close(j.done)
}

// forward runs one batch and hands each job its logits. Jobs whose
// client left while the batch filled are dropped first.
func (b *batcher) forward(r *classify.Runner, batch []*job, buf []float32) {
	live := batch[:0]
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			b.drop(j, err)
		} else {
			live = append(live, j)
		}
	}
	batch = live
	n := len(batch)
	if n == 0 {
		return
	}
	x := &ops.Tensor{Shape: []int{n, b.shape[0], b.shape[1], b.shape[2]}, Data: buf[:n*b.size]}
	for i, j := range batch {
		copy(x.Data[i*b.size:], j.input)
	}
	start := time.Now()
	logits, err := safeForward(r, x)
	if err == nil && (len(logits.Shape) != 2 || logits.Shape[0] != n || logits.Shape[1] != b.classes) {
		err = fmt.Errorf("network returned logits of shape %s for %d images of %d classes", ops.ShapeString(logits.Shape), n, b.classes)
	}
	b.metrics.batchSize.WithLabelValues(b.model).Observe(float64(n))
	b.metrics.forwardTime.WithLabelValues(b.model).Observe(time.Since(start).Seconds())
	if err == nil {
		b.metrics.images.WithLabelValues(b.model).Add(float64(n))
	}
	for i, j := range batch {
		if err != nil {
			j.err = err
		} else {
			j.logits = append([]float32(nil), logits.Data[i*b.classes:(i+1)*b.classes]...)
		}
		close(j.done)
	}
}

// safeForward turns a panic in the network into an error, so that one bad
// batch fails its requests instead of the server.
func safeForward(r *classify.Runner, x *ops.Tensor) (logits *ops.Tensor, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("forward pass failed: %v", p)
		}
	}()
	return r.Forward(x)
}
