package gemm

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// problem is one multiplication C = alpha*op(A)*op(B) (+ C when accumulate),
// followed by ep, where op transposes its operand when the flag is set.
// op(A) is m x k, op(B) is k x n, all matrices are row-major. When packed
// is not nil it is A, already packed, and a, lda, transA and alpha are
// unused (alpha is 1). The product runs on up to threads goroutines, or
// Threads() when threads < 1.
type problem struct {
	m, n, k    int
	a          []float32
	lda        int
	transA     bool
	packed     *PackedA
	b          []float32
	ldb        int
	transB     bool
	c          []float32
	ldc        int
	alpha      float32
	accumulate bool
	ep         Epilogue
	threads    int
}

// task is a problem being computed, shared with the workers: the output
// is cut into a grid of chunks of whole tiles, which the caller and any
// workers it recruits claim one at a time, row by row of the grid.
type task struct {
	problem
	plan
	// The output's tiles, rowTiles of kn.mr rows by colTiles of kn.nr
	// columns, are dealt into rowParts ranges of rows by colParts ranges
	// of columns: chunk c is row range c/colParts, column range
	// c%colParts.
	rowTiles, colTiles int
	rowParts, colParts int
	// With a shared B, the first packJobs jobs pack it, packPanels
	// panels of one k slice each, and the chunks wait for packDone to
	// reach packJobs.
	packJobs, packPanels int
	packDone             atomic.Int64
	// job, when not nil, makes t a Parallel call: a grid of one row of
	// tiles, whose chunk [lo, hi) of columns runs job.Run(lo, hi) instead
	// of a block of the product.
	job  Job
	next atomic.Int64 // the next job to claim
	wg   sync.WaitGroup
}

// tasks recycles tasks: workers need a pointer to the task, so it lives on
// the heap, and pooling keeps calls free of allocations.
var tasks = sync.Pool{New: func() any { return new(task) }}

// solve computes p with the best kernel for this CPU on up to p.threads
// goroutines (Threads() if p.threads < 1).
func solve(p problem) {
	threads := p.threads
	if threads < 1 {
		threads = Threads()
	}
	kn := best
	if p.packed != nil {
		kn = p.packed.kn
	}
	t := tasks.Get().(*task)
	t.problem = p
	runWith(t, kn, threads)
	t.problem, t.plan = problem{}, plan{} // drop the caller's slices before pooling
	tasks.Put(t)
}

// A chunk is at least this many multiply-adds, so that the packing each
// chunk repeats and the cost of handing it over stay small against its
// work. (A variable so that tests can split small problems.)
var minChunkWork = 1 << 21

// chunksPerThread is how many chunks each goroutine gets on average: more
// than one, so that a worker that starts late, or a core that is busy with
// something else, delays the call by less than a whole share.
const chunksPerThread = 4

// runWith computes t with kernel kn (or kn.small if that fits) on up to
// threads goroutines.
//
// The output is split along m when n < m and along n otherwise: each
// column chunk repacks A, so the smaller operand is the one repeated, and
// row chunks share one packing of B when it fits in a single block. An
// m-vector product is split on both (see mvecGrid). The caller starts on
// the chunks at once and recruits idle workers as it goes; waking a
// worker takes tens of microseconds, and the caller does not wait for it.
func runWith(t *task, kn *kernel, threads int) {
	p := &t.problem
	if kn.small != nil && p.n <= kn.small.nr && !p.transA && p.alpha == 1 {
		kn = kn.small
	}
	t.plan = p.newPlan(kn)
	threads = min(threads, maxThreads)
	maxChunks := max(1, min(threads*chunksPerThread, p.m*p.n*p.k/minChunkWork))
	t.rowTiles, t.colTiles = (p.m+kn.mr-1)/kn.mr, (p.n+kn.nr-1)/kn.nr
	switch {
	case kn.mvec != nil:
		p.checkMVec()
		t.rowParts, t.colParts = mvecGrid(t.rowTiles, t.colTiles, maxChunks)
	case p.n < p.m:
		t.rowParts, t.colParts = min(maxChunks, t.rowTiles), 1
	default:
		t.rowParts, t.colParts = 1, min(maxChunks, t.colTiles)
	}
	if threads <= 1 || t.rowParts*t.colParts < 2 {
		p.block(&t.plan, 0, p.m, 0, p.n)
		return
	}
	var shared *workspace
	t.packJobs = 0
	if t.colParts == 1 && t.nc >= p.n && !t.inPlaceB {
		// Every row chunk reads all of B: pack it once, in parallel.
		shared = wsPool.Get().(*workspace)
		shared.b = grow(shared.b, t.nk*t.kc*t.nc)
		t.sharedB = shared.b
		rem := p.n % kn.nr
		t.halfB = kn.half != nil && rem > 0 && rem <= kn.nr/2
		panels := (p.n + kn.nr - 1) / kn.nr
		t.packPanels = (panels + threads - 1) / threads
		t.packJobs = t.nk * ((panels + t.packPanels - 1) / t.packPanels)
	}
	t.run(threads)
	if shared != nil {
		wsPool.Put(shared)
	}
}

// run does the jobs of t on the calling goroutine and up to threads-1
// workers.
func (t *task) run(threads int) {
	helpers := workers(threads - 1)
	t.next.Store(0)
	t.packDone.Store(0)
	// Recruit idle workers while there are jobs left. A worker handed t
	// may only get to it after the jobs have run out; taking t back from
	// its slot then saves waiting for it to wake up.
	var recruited [maxThreads]bool
	for {
		for i, w := range helpers {
			if !recruited[i] {
				recruited[i] = w.offer(t)
			}
		}
		if !t.step() {
			break
		}
	}
	for i, w := range helpers {
		if recruited[i] {
			w.retract()
		}
	}
	t.wg.Wait()
}

// A Job is work that Parallel splits into independent ranges.
type Job interface {
	// Run does the part [lo, hi) of the work.
	Run(lo, hi int)
}

// Parallel calls job.Run on ranges [lo, hi) that together cover [0, n),
// on up to threads goroutines: the calling one and the GEMM's workers,
// which are usually still polling for work after the last product, so
// even the short passes between products (im2col, pooling, adds) gain
// from a second core. threads < 1 means Threads(). It returns when every
// call has. A job held by pointer in memory the caller keeps (a
// workspace, a sync.Pool) makes the call allocation-free.
func Parallel(threads, n int, job Job) {
	if threads < 1 {
		threads = Threads()
	}
	threads = min(threads, maxThreads, n)
	if threads <= 1 {
		if n > 0 {
			job.Run(0, n)
		}
		return
	}
	t := tasks.Get().(*task)
	t.job, t.packJobs = job, 0
	t.rowTiles, t.rowParts = 1, 1
	t.colTiles, t.colParts = n, min(n, threads*chunksPerThread)
	t.run(threads)
	t.job = nil
	tasks.Put(t)
}

// step does the next unclaimed job of t, packing part of the shared B or
// computing a chunk, reporting whether there was one.
func (t *task) step() bool {
	c := int(t.next.Add(1) - 1)
	if c < t.packJobs {
		t.packShared(c)
		t.packDone.Add(1)
		return true
	}
	c -= t.packJobs
	if c >= t.rowParts*t.colParts {
		return false
	}
	r, q := c/t.colParts, c%t.colParts
	i0, i1 := r*t.rowTiles/t.rowParts, (r+1)*t.rowTiles/t.rowParts
	j0, j1 := q*t.colTiles/t.colParts, (q+1)*t.colTiles/t.colParts
	if t.job != nil {
		t.job.Run(j0, j1)
		return true
	}
	// The jobs are claimed in order, so what is left to wait for is at
	// most one pack job per goroutine, already running.
	for t.packDone.Load() < int64(t.packJobs) {
		runtime.Gosched()
	}
	mr, nr := t.kn.mr, t.kn.nr
	t.block(&t.plan, i0*mr, min(i1*mr, t.m), j0*nr, min(j1*nr, t.n))
	return true
}

// packShared packs job j of the shared B: panels [f0, f1) of one k slice,
// where packBlock would put them.
func (t *task) packShared(j int) {
	kn, nr := t.kn, t.kn.nr
	perSlice := t.packJobs / t.nk
	pk, f0 := j/perSlice, j%perSlice*t.packPanels
	j0 := f0 * nr
	pc := pk * t.kc
	kc := min(t.kc, t.k-pc)
	t.packBlock(kn, t.sharedB[pk*t.kc*t.nc+f0*nr*kn.rows(kc):], pc, kc, j0, min(j0+t.packPanels*nr, t.n)-j0)
}

// help does jobs of t until there are none left.
func (t *task) help() {
	for t.step() {
	}
	t.wg.Done()
}

// maxThreads bounds the goroutines one call uses.
const maxThreads = 64

// worker is a long-lived goroutine, so that a call starts no goroutines
// and allocates nothing. A task reaches it through its slot, which holds
// one task so that offering never blocks.
//
// After each task the worker polls its slot for spinTime before parking:
// a forward pass makes about 85 GEMM calls and as many lighter passes
// (Parallel) a few tens of microseconds apart, and a parked goroutine
// takes ~100 us to run again once readied (it lands in the caller's run
// queue and waits for an idle P to steal it), which at batch 1 is a third
// of a call. While polling it yields (runtime.Gosched) so that other
// goroutines waiting for its P run first. It does not poll when the
// machine is oversubscribed (see oversubscribed): there the CPU time it
// would burn is taken from the threads with work, which measured up to
// 3x slower at batch 1 on two shared cores.
type worker struct {
	slot     atomic.Pointer[task]
	sleeping atomic.Bool
	wake     chan struct{} // one token: the slot may have been filled
}

// spinTime is how long an idle worker polls for the next task before
// parking.
const spinTime = 200 * time.Microsecond

// offer puts t in w's slot, reporting whether it was empty.
func (w *worker) offer(t *task) bool {
	t.wg.Add(1)
	if !w.slot.CompareAndSwap(nil, t) {
		t.wg.Done()
		return false
	}
	// The worker sets sleeping before its last look at the slot, so
	// either it sees t there or this sees it sleeping.
	if w.sleeping.Load() {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// retract takes back whatever task w has not started yet and computes
// what is left of it on the calling goroutine (usually nothing).
func (w *worker) retract() {
	if t := w.slot.Swap(nil); t != nil {
		t.help()
	}
}

// run computes the tasks offered to w.
func (w *worker) run() {
	for {
		if t := w.slot.Swap(nil); t != nil {
			t.help()
			continue
		}
		if w.poll() {
			continue
		}
		w.sleeping.Store(true)
		if w.slot.Load() == nil {
			<-w.wake
		}
		w.sleeping.Store(false)
	}
}

// poll waits up to spinTime for a task in w's slot, reporting whether one
// came.
func (w *worker) poll() bool {
	if oversubscribed() {
		return false
	}
	deadline := time.Now().Add(spinTime)
	for w.slot.Load() == nil {
		if time.Now().After(deadline) {
			return false
		}
		runtime.Gosched()
	}
	return true
}

var (
	workersMu  sync.Mutex
	allWorkers []*worker
)

// workers returns n workers, starting any that are missing.
func workers(n int) []*worker {
	workersMu.Lock()
	defer workersMu.Unlock()
	for len(allWorkers) < n {
		w := &worker{wake: make(chan struct{}, 1)}
		allWorkers = append(allWorkers, w)
		go w.run()
	}
	return allWorkers[:n]
}

// workspace holds one goroutine's packed panels; it is recycled through
// wsPool so that steady-state calls allocate nothing.
type workspace struct {
	a, b []float32
}

var wsPool = sync.Pool{New: func() any { return new(workspace) }}

// grow returns s resized to n values, reallocating only when it is too
// small.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// A row panel of A used by at most inPlaceACols column tiles is read in
// place instead of packed: so few tiles use it that copying would cost
// more than the cache misses it saves. The deep k blocks this allows also
// let C be written in one pass. Likewise B, when at most inPlaceBRows row
// panels use each of its panels; the kernel then prefetches B rows ahead.
var (
	inPlaceACols = 1
	inPlaceBRows = 9
)

// plan is how a problem is blocked, the same for every chunk of it.
type plan struct {
	kn       *kernel
	kc, nk   int // depth and count of the k slices
	nc       int // width of the packed B blocks
	ldp      int // row stride of packed A panels
	inPlaceA bool
	inPlaceB bool
	// sharedB, when not nil, holds B packed for every k slice (slice pk
	// at pk*kc*nc), shared by all chunks; halfB is packBlock's result.
	sharedB []float32
	halfB   bool
}

// newPlan returns the blocking of p for kernel kn.
func (p *problem) newPlan(kn *kernel) plan {
	if kn.mvec != nil {
		// One k slice, B read in place: see blockMVec.
		return plan{kn: kn, kc: p.k, nk: 1, inPlaceB: true}
	}
	nr := kn.nr
	pl := plan{kn: kn}
	pl.inPlaceA = p.packed == nil && !p.transA && p.alpha == 1 && p.n <= inPlaceACols*nr
	pl.inPlaceB = !pl.inPlaceA && !p.transB && (p.m+kn.mr-1)/kn.mr <= inPlaceBRows && kn.runPFB != nil
	kcMax := kn.kc
	if pl.inPlaceA {
		// No A panel to keep in L1: slices as deep as the packed B
		// allows, with half the L2 budget since A streams through L2 too.
		kcMax = max(kcMax, l2Block/2/(4*roundUp(p.n, nr)))
	}
	pl.kc, pl.nk = split(p.k, kcMax, 1)
	if p.packed != nil {
		pl.kc, pl.nk = p.packed.kc, p.packed.nk
	}
	pl.nc, _ = split(p.n, max(l2Block/(4*pl.kc), nr), nr)
	if pl.inPlaceB {
		pl.nc = roundUp(p.n, nr)
	}
	// Packed rows get an extra cache line so that power-of-two depths do
	// not map every row of a panel to the same L1 sets.
	pl.ldp = roundUp(pl.kc, 16) + 16
	if p.packed != nil {
		pl.ldp = p.packed.ld
	}
	return pl
}

// block computes rows [i0, i1) and columns [j0, j1) of C, in kc-deep
// slices of k.
//
// Normally, for each slice, B is packed in kc x nc blocks that stay in L2
// while every row panel of A (packed on first use, so it is hot when the
// kernel reads it, and then kept in L1) passes over them. When A or B is
// read in place, the other operand is packed whole and the loops run so
// that the operand read in place streams through once. A prepacked A
// (p.packed) is read where it is.
func (p *problem) block(pl *plan, i0, i1, j0, j1 int) {
	kn := pl.kn
	if kn.mvec != nil {
		p.blockMVec(kn, i0, i1, j0, j1)
		return
	}
	mr, nr, kc, ldp := kn.mr, kn.nr, pl.kc, pl.ldp
	m, n := i1-i0, j1-j0
	panels := (m + mr - 1) / mr
	switch {
	case p.packed != nil:
		panels = 0
	case pl.inPlaceA:
		panels = 1 // only the last, partial panel is packed
	}
	ws := wsPool.Get().(*workspace)
	ws.a = grow(ws.a, panels*mr*ldp)
	switch {
	case pl.sharedB != nil:
	case pl.inPlaceB:
		ws.b = grow(ws.b, nr*kc) // only the last, partial panel is packed
	default:
		ws.b = grow(ws.b, min(pl.nc, roundUp(n, nr))*kc)
	}
	t := tiler{p: p, kn: kn, run: kn.run, half: kn.half}
	for pk := 0; pk < pl.nk; pk++ {
		t.pc = pk * kc
		t.kc = min(kc, p.k-t.pc)
		t.flags = 0
		if pk > 0 || p.accumulate {
			t.flags = flagAccumulate
		}
		t.last = pk == pl.nk-1
		if t.last && p.ep.ReLU {
			t.flags |= flagReLU
		}
		// The packed row panels of this k slice: panel ir at (ir-i0)*ldp.
		pa := ws.a
		if p.packed != nil {
			pa = p.packed.slice(pk)[i0*ldp:]
		}
		if pl.inPlaceB {
			for ir := i0; ir < i1 && p.packed == nil; ir += mr {
				p.packAPanel(ws.a[(ir-i0)*ldp:], ldp, mr, ir, min(mr, i1-ir), t.pc, t.kc)
			}
			full := n / nr * nr
			half := p.packBlock(kn, ws.b, t.pc, t.kc, j0+full, n-full)
			for j := j0; j < j1; j += nr {
				for ir := i0; ir < i1; ir += mr {
					a := pa[(ir-i0)*ldp:]
					if j < j0+full {
						t.inPlaceB(a, ldp, ir, min(mr, i1-ir), j)
					} else {
						t.packed(a, ldp, ir, min(mr, i1-ir), j, j1-j, ws.b, half)
					}
				}
			}
			continue
		}
		for jc := j0; jc < j1; jc += pl.nc {
			ncb := min(pl.nc, j1-jc)
			bp, half := pl.sharedB, pl.halfB
			if bp != nil {
				bp = bp[pk*kc*pl.nc:]
			} else {
				bp = ws.b
				half = p.packBlock(kn, bp, t.pc, t.kc, jc, ncb)
			}
			for ir := i0; ir < i1; ir += mr {
				mrb := min(mr, i1-ir)
				var a []float32
				var lda int
				switch {
				case pl.inPlaceA && mrb == mr:
					a, lda = p.a[ir*p.lda+t.pc:], p.lda
				case pl.inPlaceA:
					a, lda = ws.a, ldp
				default:
					a, lda = pa[(ir-i0)*ldp:], ldp
				}
				if jc == j0 && lda == ldp && p.packed == nil {
					p.packAPanel(a, ldp, mr, ir, mrb, t.pc, t.kc)
				}
				for jr := 0; jr < ncb; jr += nr {
					t.packed(a, lda, ir, mrb, jc+jr, ncb-jr, bp[jr*kn.rows(t.kc):], half)
				}
			}
		}
	}
	wsPool.Put(ws)
}

// tiler runs the kernel on the tiles of one k slice.
type tiler struct {
	p         *problem
	kn        *kernel
	run, half kernelFunc
	pc, kc    int  // the k slice
	flags     int  // kernel flags for the slice
	last      bool // whether the slice is the last, which applies p.ep
}

// packed computes the tile at rows [i, i+rows) and columns [j, j+cols) of
// C, at most kn.nr of them, from the packed B panel b (half-width if half
// and the tile fits in it).
func (t *tiler) packed(a []float32, lda, i, rows, j, cols int, b []float32, half bool) {
	run, width := t.run, t.kn.nr
	if half && cols <= width/2 {
		run, width = t.half, width/2
	}
	t.call(run, a, lda, &b[0], width, i, rows, j, min(cols, t.kn.nr))
}

// inPlaceB computes the full-width tile at rows [i, i+rows), columns
// [j, j+kn.nr) of C, reading B in place.
func (t *tiler) inPlaceB(a []float32, lda, i, rows, j int) {
	t.call(t.kn.runPFB, a, lda, &t.p.b[t.pc*t.p.ldb+j], t.p.ldb, i, rows, j, t.kn.nr)
}

// call runs one kernel on the tile at rows [i, i+rows), columns
// [j, j+cols) of C.
func (t *tiler) call(run kernelFunc, a []float32, lda int, b *float32, ldb, i, rows, j, cols int) {
	p := t.p
	var bias, res *float32
	if t.last && p.ep.Bias != nil {
		bias = &p.ep.Bias[i]
	}
	if t.last && p.ep.Residual != nil {
		res = &p.ep.Residual[i*p.ep.LDR+j]
	}
	run(t.kn.rows(t.kc), &a[0], lda, b, ldb, &p.c[i*p.ldc+j], p.ldc, rows, colMask(cols), t.flags, bias, res, p.ep.LDR)
}

// roundUp rounds n up to a multiple of align.
func roundUp(n, align int) int { return (n + align - 1) / align * align }

// split divides n into the fewest chunks of at most max (rounded up to a
// multiple of align), making them as even as possible. It returns the
// chunk size and count.
func split(n, max, align int) (size, count int) {
	count = (n + max - 1) / max
	size = roundUp((n+count-1)/count, align)
	return size, (n + size - 1) / size
}

// packAPanel copies rows [i, i+rows) and columns [pc, pc+kc) of
// alpha*op(A) into dst, rows ld values apart, and zeroes the rows up to
// mr. The kernel computes those rows but never stores them; zeros keep
// stale values (which might be subnormal, and slow) out of its FMAs.
func (p *problem) packAPanel(dst []float32, ld, mr, i, rows, pc, kc int) {
	for r := rows; r < mr; r++ {
		clear(dst[r*ld : r*ld+kc])
	}
	for r := 0; r < rows; r++ {
		d := dst[r*ld : r*ld+kc]
		switch {
		case p.transA:
			for q := range d {
				d[q] = p.alpha * p.a[(pc+q)*p.lda+i+r]
			}
		case p.alpha != 1:
			for q, v := range p.a[(i+r)*p.lda+pc : (i+r)*p.lda+pc+kc] {
				d[q] = p.alpha * v
			}
		default:
			copy(d, p.a[(i+r)*p.lda+pc:])
		}
	}
}

// packBlock packs rows [pc, pc+kc) and columns [j, j+cols) of op(B) into
// dst as panels of kn.nr columns, each kc rows of kn.nr values, the last
// one zero-padded (for a bf16 kernel, kn.rows(kc) rows of pairs: its
// packB always applies, since a BF16 product's B is never transposed). It
// reports whether the last panel is half-width (rows of kn.nr/2 values,
// for kn.half), which it is when kn has a half kernel and the panel is at
// most half full.
func (p *problem) packBlock(kn *kernel, dst []float32, pc, kc, j, cols int) (half bool) {
	nr := kn.nr
	full, rem := cols/nr, cols%nr
	half = kn.half != nil && rem > 0 && rem <= nr/2
	lastNR := nr
	if half {
		lastNR = nr / 2
	}
	if kn.packB != nil && !p.transB {
		kn.packB(&dst[0], &p.b[pc*p.ldb+j], p.ldb, kc, full, rem, lastNR)
		return half
	}
	for f := 0; f < full; f++ {
		p.packBPanel(dst[f*nr*kc:], nr, pc, kc, j+f*nr, nr)
	}
	if rem > 0 {
		p.packBPanel(dst[full*nr*kc:], lastNR, pc, kc, j+full*nr, rem)
	}
	return half
}

// packBPanel packs rows [pc, pc+kc) and columns [j, j+cols) of op(B) into
// dst as kc rows of width values, zero-padding missing columns.
func (p *problem) packBPanel(dst []float32, width, pc, kc, j, cols int) {
	dst = dst[:kc*width]
	if cols < width {
		clear(dst)
	}
	if p.transB {
		for c := 0; c < cols; c++ {
			src := p.b[(j+c)*p.ldb+pc : (j+c)*p.ldb+pc+kc]
			for q, v := range src {
				dst[q*width+c] = v
			}
		}
		return
	}
	for q := 0; q < kc; q++ {
		copy(dst[q*width:q*width+cols], p.b[(pc+q)*p.ldb+j:])
	}
}
