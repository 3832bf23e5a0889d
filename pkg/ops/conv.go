package ops

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/res2net/res2net/pkg/ops/gemm"
)

// Conv2d is a 2-D convolution with a square kernel, no dilation and
// optionally groups (Res2NeXt's 3x3 convs): all that Res2Net needs. The bias, ReLU and an optional residual
// are applied in the GEMM epilogue, so a conv followed by BatchNorm (folded,
// see BatchNorm.FoldInto), ReLU and a residual add costs a single pass over
// the output.
//
// Forward takes a batch of n images channel-major, C x N x H x W (for n = 1
// that is plain CHW): channel c of every image is one row of the GEMM's
// operands, so the whole batch is a single product that reads the weights
// once, and the 7x7 and 14x14 layers get products wide enough for the
// kernels.
type Conv2d struct {
	InC, OutC int
	Kernel    int // kernel height and width
	Stride    int
	Pad       int // zero padding on every side
	// Groups splits the input and output channels into that many groups,
	// output group g seeing input group g only (PyTorch's groups); 0 means 1.
	// InC and OutC must divide by it.
	Groups int
	Weight []float32 // OutC x InC/Groups x Kernel x Kernel, PyTorch's layout
	Bias   []float32 // OutC values, or nil
	ReLU   bool      // clamp at zero after bias and residual
	// Precision is the arithmetic Pack packs the weights for (see
	// gemm.PackAPrecision); Forward without Pack is always FP32.
	Precision gemm.Precision
	// Columns is the conv's output positions per image at the input size
	// it usually runs at, or 0 when unknown: Pack and UsePacked pass it to
	// gemm (PackOptions.Columns), which picks the weights' layout for
	// products that wide. Any input size still works with either layout.
	Columns int

	packed []*gemm.PackedA // Weight packed for the GEMM by Pack, one per group, or nil
}

// MACs returns the multiply-accumulates of Forward on n h x w images.
func (c *Conv2d) MACs(n, h, w int) int64 {
	oh, ow := c.OutSize(h, w)
	return int64(c.OutC) * int64(c.groupK()) * int64(n*oh*ow)
}

// colRows returns the rows of the conv's im2col matrix: one per input
// channel and tap.
func (c *Conv2d) colRows() int { return c.InC * c.Kernel * c.Kernel }

// groups returns the number of groups, at least 1.
func (c *Conv2d) groups() int { return max(c.Groups, 1) }

// groupK is the depth of one group's GEMM: the weights of one output channel.
func (c *Conv2d) groupK() int { return c.InC / c.groups() * c.Kernel * c.Kernel }

// Pack packs the weights for the GEMM once, so that Forward stops
// repacking them on every call. Call it when Weight is final (after
// BatchNorm.FoldInto). Pack then drops Weight, which Forward no longer
// reads, so the network's weights are held once, not twice.
func (c *Conv2d) Pack() {
	g, k := c.groups(), c.groupK()
	rows := c.OutC / g
	c.packed = make([]*gemm.PackedA, g)
	for i := range g {
		c.packed[i] = gemm.PackWith(c.packOptions(), rows, k, c.Weight[i*rows*k:(i+1)*rows*k], k)
	}
	c.Weight = nil
}

// packOptions returns the options Pack and UsePacked pack the weights with.
func (c *Conv2d) packOptions() gemm.PackOptions {
	return gemm.PackOptions{Precision: c.Precision, Columns: c.Columns}
}

// OutSize returns the output height and width for an h x w input.
func (c *Conv2d) OutSize(h, w int) (oh, ow int) {
	return (h+2*c.Pad-c.Kernel)/c.Stride + 1, (w+2*c.Pad-c.Kernel)/c.Stride + 1
}

// direct reports whether the input image already is the GEMM's B matrix
// (InC x H*W): a 1x1 kernel at stride 1 without padding reads every input
// pixel once, in place.
func (c *Conv2d) direct() bool { return c.Kernel == 1 && c.Stride == 1 && c.Pad == 0 }

// wideImage is the output size (64x64 pixels) from which one image's
// product is wide enough to keep the GEMM busy alone. Batching such a conv
// would only multiply its im2col buffer, which for the 224x224 stem is
// already 147 x 12544 values per image, so Forward runs it image by image.
const wideImage = 64 * 64

// imagesPerProduct returns how many of n images (with oh x ow outputs)
// each GEMM of Forward covers: all n, or one when the conv has an im2col
// and its images are wide.
func (c *Conv2d) imagesPerProduct(n, oh, ow int) int {
	if !c.direct() && oh*ow >= wideImage {
		return 1
	}
	return n
}

// ColSize is the length of the scratch buffer Forward needs for n h x w
// images: 0 when the input is used directly, else the im2col matrix of the
// images one GEMM covers (InC*Kernel*Kernel x OH*OW for each; for a strided
// 1x1 conv that is just the subsampled input).
func (c *Conv2d) ColSize(n, h, w int) int {
	if c.direct() {
		return 0
	}
	oh, ow := c.OutSize(h, w)
	imgs := c.imagesPerProduct(n, oh, ow)
	size := c.colRows() * imgs * oh * ow
	if c.phased() {
		size += c.InC * imgs * h * w
	}
	return size
}

// phased reports whether im2col first splits each input plane into its
// four stride-2 phases (even and odd rows and columns). Every receptive
// field row of a stride-2 conv then is a shifted copy of one phase, a
// memmove per output row, instead of a strided gather per pixel: for the
// 7x7 stem that is one strided pass over the input in place of 49. A 1x1
// conv has one tap, which a single gather serves as well.
func (c *Conv2d) phased() bool { return c.Stride == 2 && c.Kernel > 1 }

// Exec is what one Forward call runs with besides its tensors. It belongs
// to the caller, so that callers running convs at the same time (two
// models, say) share no scratch and do not change each other's threads.
type Exec struct {
	Col     []float32 // im2col scratch of at least ColSize(n, h, w) values, reused so that calls allocate nothing
	Threads int       // goroutines the GEMM may use; 0 means gemm.Threads()
	// Observe, when not nil, is called after each Forward with the conv,
	// its input's images and size, and the time it took: per-layer
	// profiles of a network.
	Observe func(c *Conv2d, n, h, w int, took time.Duration)
}

// Forward computes dst (OutC x n x OH x OW) from src (InC x n x h x w),
// adding residual (shaped like dst) when it is not nil, with ex's scratch
// and thread count. The slices may be longer than needed (workspaces are
// sized for the largest layer) and may be channel ranges of larger
// tensors; dst must not overlap src, residual or ex.Col.
//
// All n images are one GEMM per group, except for wide images with an
// im2col (the stem): there each image's product writes its own columns of
// dst, so the im2col buffer holds one image. The im2col rows of group g
// are the rows its GEMM reads (rows follow input channels), so a grouped
// conv is one im2col and a GEMM per group over consecutive row ranges.
// A wide im2col is cut into column blocks (see colBlocks), each written
// and multiplied before the next.
func (c *Conv2d) Forward(dst, src []float32, n, h, w int, residual []float32, ex Exec) {
	if ex.Observe == nil {
		c.forward(dst, src, n, h, w, residual, ex)
		return
	}
	start := time.Now()
	c.forward(dst, src, n, h, w, residual, ex)
	ex.Observe(c, n, h, w, time.Since(start))
}

// forward is Forward without the observer.
func (c *Conv2d) forward(dst, src []float32, n, h, w int, residual []float32, ex Exec) {
	oh, ow := c.OutSize(h, w)
	hw, ohw := h*w, oh*ow
	imgs := c.imagesPerProduct(n, oh, ow)
	width := imgs * ohw
	for i := 0; i < n; i += imgs {
		// Image i starts i planes into every channel of src, dst and residual.
		p := convPasses.Get().(*convPass)
		*p = convPass{c: c, src: src[i*hw:], dst: dst[i*ohw:], n: imgs, ld: n * hw,
			h: h, w: w, oh: oh, ow: ow, cols: n * ohw}
		if residual != nil {
			p.residual = residual[i*ohw:]
		}
		switch {
		case c.direct():
			p.multiply(p.src, p.ld, 0, imgs*oh, ex.Threads)
		default:
			col := ex.Col[:c.colRows()*width]
			if c.phased() {
				p.phases = ex.Col[len(col):][:c.InC*imgs*hw]
			}
			p.col = col
			p.run(ex.Threads)
		}
		*p = convPass{}
		convPasses.Put(p)
	}
}

// convPass is one product of Forward: the conv, its images and its
// scratch, shared by the jobs that gemm.Parallel runs over channels or
// column blocks.
type convPass struct {
	c                   *Conv2d
	src, dst, residual  []float32 // from the pass's first image on
	col, phases         []float32 // im2col matrix and stride-2 phases (see phased)
	n, ld, h, w, oh, ow int       // images, src's channel stride, input and output size
	cols                int       // dst's and residual's row length: all of Forward's images
	blockRows, blocks   int       // column blocks of blockRows output rows (see colBlocks)
	slots               slots     // of the im2col scratch, one per block job running
}

// convPasses recycles passes, so that Forward allocates nothing.
var convPasses = sync.Pool{New: func() any { return new(convPass) }}

// An im2col block should fit in half of a 1 MiB L2 with the weights and
// output it meets there, and be at least minBlockCols wide so that its
// product keeps the kernels' tiles full. Blocks pay when the whole im2col
// matrix would not stay in L2 between being written and being read.
const (
	blockBytes   = 512 << 10
	minBlockCols = 512
)

// colBlocks returns how p's im2col is cut for threads goroutines: into
// blocks of whole output rows (of all the pass's images, counted
// together), as even as possible and, when there is more than one, a
// multiple of threads in number, since each runs on one thread; one block
// means no cut.
func (p *convPass) colBlocks(threads int) (rows, blocks int) {
	total := p.n * p.oh
	depth := p.c.colRows()
	rows = max(blockBytes/(4*depth*p.ow), (minBlockCols+p.ow-1)/p.ow, 1)
	if threads > 1 && p.c.packed != nil && p.c.packed[0].MVector() {
		// A block per thread where the rows go into whole blocks of
		// at most a thread's share: the m-vector layout's products are
		// narrow anyway, and a block lowered and multiplied on one
		// thread is read where it was written, with one meeting point
		// less (batch 1 on 2 threads ~5 % faster; 7 rows on 2 threads
		// stay one block, which the product's grid balances better).
		rows = min(rows, (total+threads-1)/threads)
	}
	blocks = max(total/rows, 1)
	if blocks > 1 {
		blocks = min(roundUp(blocks, threads), total)
	}
	rows = (total + blocks - 1) / blocks
	return rows, (total + rows - 1) / rows
}

// roundUp rounds n up to a multiple of align.
func roundUp(n, align int) int { return (n + align - 1) / align * align }

// run lowers and multiplies the pass: as one im2col over all channels, then
// one product on all threads, or block by block, each on one thread.
func (p *convPass) run(threads int) {
	if threads < 1 {
		threads = gemm.Threads()
	}
	p.blockRows, p.blocks = p.colBlocks(threads)
	if p.blocks == 1 {
		gemm.Parallel(threads, p.c.InC, (*lowerChannels)(p))
		p.multiply(p.col, p.n*p.oh*p.ow, 0, p.n*p.oh, threads)
		return
	}
	if p.phases != nil {
		gemm.Parallel(threads, p.c.InC, (*splitChannels)(p))
	}
	gemm.Parallel(p.blockThreads(threads), p.blocks, (*lowerBlocks)(p))
}

// blockThreads returns how many of threads goroutines may lower blocks at
// once: each holds a slot of scratch of a whole block (any block may land
// in any slot), and the scratch holds only the pass's rows, so at most as
// many as whole blocks fit in them (fewer than threads only when the last
// block is short and the blocks are as few as the threads).
func (p *convPass) blockThreads(threads int) int {
	return max(min(threads, p.n*p.oh/p.blockRows), 1)
}

// lowerChannels, splitChannels and lowerBlocks are a pass's jobs for
// gemm.Parallel: the whole im2col over a range of channels, the stride-2
// phases of a range of channels, and a range of column blocks, each
// lowered and multiplied.
type (
	lowerChannels convPass
	splitChannels convPass
	lowerBlocks   convPass
)

func (j *lowerChannels) Run(lo, hi int) {
	p := (*convPass)(j)
	p.split(lo, hi)
	p.lower(p.col, p.n*p.oh*p.ow, lo, hi, 0, p.n*p.oh)
}

func (j *splitChannels) Run(lo, hi int) { (*convPass)(j).split(lo, hi) }

func (j *lowerBlocks) Run(lo, hi int) {
	p := (*convPass)(j)
	depth := p.c.colRows()
	// A slot of scratch of its own while it runs, the same for all its
	// blocks, so that each block is written where the last one was, in L2.
	slot := p.slots.claim()
	defer p.slots.release(slot)
	col := p.col[slot*depth*p.blockRows*p.ow:]
	for b := lo; b < hi; b++ {
		r0 := b * p.blockRows
		r1 := min(r0+p.blockRows, p.n*p.oh)
		width := (r1 - r0) * p.ow
		p.lower(col[:depth*width], width, 0, p.c.InC, r0, r1)
		p.multiply(col[:depth*width], width, r0, r1, 1)
	}
}

// slots hands out the scratch slots of concurrent jobs: bit i set means
// slot i is in use. There are never more jobs at a time than
// blockThreads, so a slot is always free and every slot lies within the
// im2col scratch.
type slots struct{ used atomic.Uint64 }

// claim takes the lowest free slot.
func (s *slots) claim() int {
	for {
		used := s.used.Load()
		i := bits.TrailingZeros64(^used)
		if s.used.CompareAndSwap(used, used|1<<i) {
			return i
		}
	}
}

// release frees slot i.
func (s *slots) release(i int) { s.used.And(^(uint64(1) << i)) }

// multiply computes output rows [r0, r1) of the pass (whole output rows
// of its images, counted together) from b, its GEMM operand for those
// rows: each group's rows of b, ldb apart, on up to threads goroutines.
func (p *convPass) multiply(b []float32, ldb, r0, r1, threads int) {
	c := p.c
	groups, k := c.groups(), c.groupK()
	rows := c.OutC / groups // output channels per group
	bRows := k              // B rows per group: an im2col's rows, or a direct conv's input channels
	if c.direct() {
		bRows = c.InC / groups
	}
	width, off := (r1-r0)*p.ow, r0*p.ow
	for g := range groups {
		ep := gemm.Epilogue{ReLU: c.ReLU}
		if c.Bias != nil {
			ep.Bias = c.Bias[g*rows:]
		}
		if p.residual != nil {
			ep.Residual, ep.LDR = p.residual[g*rows*p.cols+off:], p.cols
		}
		bg, cg := b[g*bRows*ldb:], p.dst[g*rows*p.cols+off:]
		if c.packed != nil {
			c.packed[g].MulThreads(threads, width, bg, ldb, cg, p.cols, ep)
		} else {
			gemm.FusedThreads(threads, rows, width, k, c.Weight[g*rows*k:(g+1)*rows*k], k, bg, ldb, cg, p.cols, ep)
		}
	}
}

// split writes the stride-2 phases of channels [c0, c1) of every image
// of a phased pass (see phased) into p.phases, h*w values per channel and
// image; it does nothing for other passes.
func (p *convPass) split(c0, c1 int) {
	if p.phases == nil {
		return
	}
	hw := p.h * p.w
	for ci := c0; ci < c1; ci++ {
		for img := range p.n {
			splitPhases(p.phases[(ci*p.n+img)*hw:][:hw], p.src[ci*p.ld+img*hw:][:hw], p.h, p.w)
		}
	}
}

// lower writes the im2col rows of channels [c0, c1) for output rows
// [r0, r1) into col, whose rows are ld values apart: row (ci*k+ky)*k+kx
// holds input pixel (ci, img, oy*stride-pad+ky, ox*stride-pad+kx) for
// output pixel (img, oy, ox), output row r being image r/oh's row r%oh, or
// zero where that falls in the padding. The row order is PyTorch's weight
// layout, so the weights serve as the GEMM's A unchanged. With k == 1 and
// no padding this is plain subsampling. A phased pass reads its phases,
// which split must have written.
func (p *convPass) lower(col []float32, ld, c0, c1, r0, r1 int) {
	k, pad, stride := p.c.Kernel, p.c.Pad, p.c.Stride
	hw := p.h * p.w
	same := stride == 1 && p.oh == p.h && p.ow == p.w
	for ci := c0; ci < c1; ci++ {
		for r := r0; r < r1; {
			img, oy := r/p.oh, r%p.oh
			rows := min(p.oh-oy, r1-r) // output rows of this image
			plane := p.src[ci*p.ld+img*hw:][:hw]
			for ky := range k {
				dy := ky - pad
				for kx := range k {
					dx := kx - pad
					row := col[((ci*k+ky)*k+kx)*ld+(r-r0)*p.ow:][:rows*p.ow]
					switch {
					case p.phases != nil:
						// The tap reads one phase, shifted by half its offset:
						// one copy when the phase is as large as the output
						// (even input sizes), else row by row.
						py, px := dy&1, dx&1 // parities, also of negative offsets
						at, ph, pw := phaseOf(p.h, p.w, py, px)
						phase := p.phases[(ci*p.n+img)*hw+at:][:ph*pw]
						sy, sx := (dy-py)/2, (dx-px)/2
						if ph == p.oh && pw == p.ow {
							shifted(row, phase, pw, oy, sy, sx)
						} else {
							gather(row, phase, ph, pw, oy, sy, sx, 1, p.ow)
						}
					case same:
						shifted(row, plane, p.w, oy, dy, dx)
					default:
						gather(row, plane, p.h, p.w, oy, dy, dx, stride, p.ow)
					}
				}
			}
			r += rows
		}
	}
}

// splitPhases writes the four stride-2 phases of plane (h x w) into dst
// (h*w values): phase (py, px) holds the pixels of rows py, py+2, ... and
// columns px, px+2, ..., as an image of its own at phaseOf(h, w, py, px).
func splitPhases(dst, plane []float32, h, w int) {
	for y := range h {
		row := plane[y*w : (y+1)*w]
		at0, _, pw0 := phaseOf(h, w, y&1, 0)
		at1, _, pw1 := phaseOf(h, w, y&1, 1)
		even := dst[at0+y/2*pw0:][:pw0]
		odd := dst[at1+y/2*pw1:][:pw1]
		for x := range odd {
			even[x], odd[x] = row[2*x], row[2*x+1]
		}
		if w&1 == 1 {
			even[pw1] = row[w-1]
		}
	}
}

// phaseOf returns where phase (py, px) of an h x w plane starts in
// splitPhases' layout (phases in the order (0,0), (0,1), (1,0), (1,1)) and
// its size, ph x pw.
func phaseOf(h, w, py, px int) (at, ph, pw int) {
	h0, w0 := (h+1)/2, (w+1)/2
	ph, pw = h0, w0
	if py == 1 {
		at, ph = h0*w, h/2
	}
	if px == 1 {
		at, pw = at+ph*w0, w/2
	}
	return at, ph, pw
}

// shifted fills row (whole output rows from oy0 on, w values each) with
// plane shifted by dy rows and dx columns, zero where the source is outside
// the image: im2col rows of a stride-1 conv whose output is as large as
// its input, such as the 3x3 convs of the multi-scale unit, and of a
// stride-2 conv's taps on a phase of the output's size. In row-major order
// the shift is a single offset, so it is one copy plus zeroing the columns
// that wrapped around.
func shifted(row, plane []float32, w, oy0, dy, dx int) {
	n := len(row)
	d := (oy0+dy)*w + dx // row[j] = plane[j+d]
	lo, hi := max(0, -d), min(n, len(plane)-d)
	if hi <= lo {
		clear(row)
		return
	}
	copy(row[lo:hi], plane[lo+d:hi+d])
	clear(row[:lo])
	clear(row[hi:])
	switch {
	case dx > 0: // the last dx columns read the next image row
		for y := w - min(dx, w); y < n; y += w {
			clear(row[y:min(y+dx, n)])
		}
	case dx < 0: // the first -dx columns read the previous image row
		for y := 0; y < n; y += w {
			clear(row[y:min(y-dx, y+w)])
		}
	}
}

// gather fills row (whole output rows from oy0 on, ow values each) with
// the input pixels at (oy*stride+dy, ox*stride+dx), zero outside the
// image: im2col rows in the general case.
func gather(row, plane []float32, h, w, oy0, dy, dx, stride, ow int) {
	// Output columns [lo, hi) read inside the image; the rest is padding.
	lo, hi := inside(ow, w, dx, stride)
	for r := range len(row) / ow {
		out := row[r*ow : (r+1)*ow]
		iy := (oy0+r)*stride + dy
		if iy < 0 || iy >= h {
			clear(out)
			continue
		}
		in := plane[iy*w : (iy+1)*w]
		clear(out[:lo])
		clear(out[hi:])
		if lo == hi { // the whole row falls in the padding
			continue
		}
		ix := lo*stride + dx
		if stride == 1 {
			copy(out[lo:hi], in[ix:])
			continue
		}
		for ox := lo; ox < hi; ox++ {
			out[ox] = in[ix]
			ix += stride
		}
	}
}

// inside returns the range [lo, hi) of output positions o in [0, n) whose
// input position o*stride+off lies in [0, size). Computing it once per row
// keeps bounds checks out of the inner loops of im2col and the pools.
func inside(n, size, off, stride int) (lo, hi int) {
	if off < 0 {
		lo = (-off + stride - 1) / stride
	}
	if last := size - 1 - off; last >= 0 {
		hi = last/stride + 1
	}
	hi = min(hi, n)
	return min(lo, hi), hi
}

// Conv2dRef is the plain definition of a convolution of the N x C x H x W
// tensor x with weight (OutC x C/groups x K x K) and optional bias in
// groups groups (output channel o sees input channels
// [o/(OutC/groups)*C/groups, ...+C/groups)), accumulated in float64. It is
// the yardstick for Conv2d and is far too slow for inference.
func Conv2dRef(x, weight *Tensor, bias []float32, stride, pad, groups int) *Tensor {
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	oc, cg, k := weight.Shape[0], weight.Shape[1], weight.Shape[2]
	oh, ow := (h+2*pad-k)/stride+1, (w+2*pad-k)/stride+1
	out := New(n, oc, oh, ow)
	for b := range n {
		for o := range oc {
			first := o / (oc / groups) * cg // the group's first input channel
			for oy := range oh {
				for ox := range ow {
					var s float64
					if bias != nil {
						s = float64(bias[o])
					}
					for ci := range cg {
						for ky := range k {
							for kx := range k {
								iy, ix := oy*stride-pad+ky, ox*stride-pad+kx
								if iy < 0 || iy >= h || ix < 0 || ix >= w {
									continue
								}
								s += float64(x.Data[((b*c+first+ci)*h+iy)*w+ix]) *
									float64(weight.Data[((o*cg+ci)*k+ky)*k+kx])
							}
						}
					}
					out.Data[((b*oc+o)*oh+oy)*ow+ox] = float32(s)
				}
			}
		}
	}
	return out
}
