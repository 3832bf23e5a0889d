package preprocess

import (
	"fmt"
	"image"

	"github.com/res2net/res2net/pkg/ops"
)

// Decoders hand their pixels to a rowSink one row at a time, top to
// bottom, so that the transform can resize rows as they are decoded and
// keep only its reduced intermediate instead of the whole image.

// rowSink receives a decoded image's rows in order. Each row has 4 bytes a
// pixel, R, G, B first (the fourth is ignored); the slice is only valid
// during the call.
type rowSink interface {
	row(y int, pix []uint8)
}

// imageSink collects the rows into an opaque NRGBA image.
type imageSink struct{ m *image.NRGBA }

func newImageSink(w, h int) *imageSink { return &imageSink{newOpaque(w, h)} }

func (s *imageSink) row(y int, pix []uint8) {
	o := s.m.Pix[y*s.m.Stride:][:4*s.m.Rect.Dx()]
	copy(o, pix)
	for i := 3; i < len(o); i += 4 {
		o[i] = 255
	}
}

// transformSink applies a Transform to an image arriving row by row, as
// Pillow's ImageOps.exif_transpose (for orientation o), resize and
// torchvision's crop and normalisation would on the whole image.
type transformSink struct {
	rs  *resampler // nil when no resized pixel lands in the crop
	out *tensorSink
}

// newTransformSink prepares the transform of a w x h source with EXIF
// orientation o (1 for none). It refuses, with ErrTooLarge, a transform
// whose working memory would exceed limit bytes.
func newTransformSink(t Transform, w, h, o int, limit int64) (*transformSink, error) {
	ow, oh := w, h
	if o >= 5 && o <= 8 {
		ow, oh = h, w
	}
	g := t.Geometry(ow, oh)
	s := &transformSink{out: newTensorSink(t, g)}
	if s.out.empty() {
		return s, nil
	}
	rs, err := newResampler(w, h, o, g.ResizedW, g.ResizedH, s.out.x0, s.out.y0, s.out.x1, s.out.y1, limit)
	if err != nil {
		return nil, err
	}
	s.rs = rs
	return s, nil
}

func (s *transformSink) row(y int, pix []uint8) {
	if s.rs != nil {
		s.rs.row(y, pix)
	}
}

// finish returns the tensor once every row has arrived.
func (s *transformSink) finish() *ops.Tensor {
	if s.rs != nil {
		s.out.fill(s.rs.finish())
	}
	return s.out.t
}

// resampler computes the rectangle [x0,x1) x [y0,y1) of Pillow 9.4's
// resize((outW, outH), BILINEAR) of the source after EXIF orientation o,
// from the source rows in decoding order. Each output pixel depends only
// on its own weights, so the rectangle is bit-identical to cropping
// Pillow's full result. Like Pillow it runs the (oriented) horizontal pass
// into an 8-bit intermediate, only for the rows the vertical pass reads,
// then the vertical pass; a pass whose size does not change is an
// identity. Integer sums do not depend on their order, so flips only
// remap indices. When the orientation transposes, the horizontal pass
// runs along the source's columns: it accumulates each source row into
// the intermediate's sums as the row arrives.
type resampler struct {
	w, h      int
	o         int
	transpose bool
	first     *kernel // horizontal pass, in source indices along its axis
	second    *kernel // vertical pass, relative to rowLo
	rowLo     int     // oriented rows [rowLo, rowLo+tmp.h) feed the vertical pass
	tmp       *rgbImage
	// Transposed orientations only.
	acc    []int32 // per first-pass position, per intermediate row, 3 sums
	gather []uint8 // the source pixels of the intermediate rows, packed RGB
	order  []int   // first-pass positions by source start
	lo, hi int     // order[lo:hi] are the positions the current row feeds
}

// newResampler prepares the resample of a w x h source, in at most limit
// bytes of working memory; see resampler.
func newResampler(w, h, o, outW, outH, x0, y0, x1, y1 int, limit int64) (*resampler, error) {
	r := &resampler{w: w, h: h, o: o, transpose: o >= 5 && o <= 8}
	ow, oh := w, h
	if r.transpose {
		ow, oh = h, w
	}
	r.first = passKernel(ow, outW, x0, x1)
	r.second = passKernel(oh, outH, y0, y1)
	r.rowLo = r.second.start[0]
	last := len(r.second.start) - 1
	rows := r.second.start[last] + r.second.taps[last] - r.rowLo
	for i := range r.second.start {
		r.second.start[i] -= r.rowLo
	}
	cols := x1 - x0
	need := int64(cols) * int64(rows) * 3
	if r.transpose {
		need *= 5 // the int32 sums besides the intermediate
	}
	if need > limit {
		return nil, fmt.Errorf("%w: resizing to %dx%d needs %d MiB, more than the limit of %d MiB",
			ErrTooLarge, outW, outH, need>>20, limit>>20)
	}
	// Flips reverse the first pass's axis in source indices.
	mirrored := (!r.transpose && (o == 2 || o == 3)) || (r.transpose && (o == 6 || o == 7))
	if mirrored {
		r.first.mirror(ow)
	}
	r.tmp = &rgbImage{w: cols, h: rows, stride: 3 * cols} // pixels allocated by the first row
	if r.transpose {
		r.order = make([]int, cols)
		for i := range r.order {
			r.order[i] = i
		}
		if mirrored {
			for i := range r.order {
				r.order[i] = cols - 1 - i
			}
		}
	}
	return r, nil
}

// passKernel is the kernel of one pass, an identity when the size stays.
func passKernel(inSize, outSize, lo, hi int) *kernel {
	if inSize != outSize {
		return newKernel(inSize, outSize, lo, hi)
	}
	n := hi - lo
	k := &kernel{lo: lo, start: make([]int, n), taps: make([]int, n), ksize: 1, w: make([]int32, n)}
	for i := range n {
		k.start[i], k.taps[i], k.w[i] = lo+i, 1, 1<<precisionBits
	}
	return k
}

// allocate takes the working memory, once rows arrive (a file may fail
// before its first row).
func (r *resampler) allocate() {
	r.tmp.pix = make([]uint8, r.tmp.h*r.tmp.stride)
	if r.transpose {
		const half = 1 << (precisionBits - 1)
		r.acc = make([]int32, r.tmp.w*r.tmp.h*3)
		for i := range r.acc {
			r.acc[i] = half
		}
		r.gather = make([]uint8, r.tmp.h*3)
	}
}

// row takes source row y (4 bytes a pixel).
func (r *resampler) row(y int, pix []uint8) {
	if r.tmp.pix == nil {
		r.allocate()
	}
	if !r.transpose {
		yo := y
		if r.o == 3 || r.o == 4 {
			yo = r.h - 1 - y
		}
		if yo < r.rowLo || yo >= r.rowLo+r.tmp.h {
			return
		}
		horizontalRow(r.tmp.pix[(yo-r.rowLo)*r.tmp.stride:][:r.tmp.stride], pix, r.first)
		return
	}
	k := r.first
	for r.hi < len(r.order) && k.start[r.order[r.hi]] <= y {
		r.hi++
	}
	for r.lo < r.hi && k.start[r.order[r.lo]]+k.taps[r.order[r.lo]] <= y {
		r.lo++
	}
	if r.lo == r.hi {
		return
	}
	// Intermediate row j is oriented row rowLo+j: source column rowLo+j,
	// or its mirror for orientations 7 and 8.
	rows := r.tmp.h
	for j := range rows {
		x := r.rowLo + j
		if r.o == 7 || r.o == 8 {
			x = r.w - 1 - x
		}
		copy(r.gather[3*j:3*j+3], pix[4*x:4*x+3])
	}
	for _, i := range r.order[r.lo:r.hi] {
		c := k.w[i*k.ksize+y-k.start[i]]
		if c == 0 {
			continue
		}
		acc := r.acc[i*rows*3 : (i+1)*rows*3]
		for j, v := range r.gather {
			acc[j] += int32(v) * c
		}
	}
}

// finish runs the vertical pass and returns the rectangle, packed RGB.
func (r *resampler) finish() *rgbImage {
	if r.tmp.pix == nil {
		r.allocate()
	}
	if r.transpose {
		rows := r.tmp.h
		for i := 0; i < r.tmp.w; i++ {
			acc := r.acc[i*rows*3 : (i+1)*rows*3]
			for j := range rows {
				o := r.tmp.pix[j*r.tmp.stride+3*i:]
				o[0], o[1], o[2] = clip8(acc[3*j]), clip8(acc[3*j+1]), clip8(acc[3*j+2])
			}
		}
	}
	out := newRGB(r.tmp.w, len(r.second.start))
	verticalPass(out, r.tmp, r.second)
	return out
}
