package ops

import "math"

// Pool2d is the geometry of a square pooling window over CHW images, with
// PyTorch's options. Every window holds at least one input pixel when
// Pad < Kernel, as PyTorch requires.
type Pool2d struct {
	Kernel, Stride, Pad int
	// CeilMode rounds the output size up, as PyTorch's ceil_mode: a last
	// window may then hang over the padded input (it is dropped when it
	// would start in the right padding).
	CeilMode bool
	// ExcludePad divides an average by the window's pixels inside the image,
	// PyTorch's count_include_pad=False; by default the padding counts.
	ExcludePad bool
}

// OutSize returns the output height and width for an h x w input.
func (p Pool2d) OutSize(h, w int) (oh, ow int) { return p.outLen(h), p.outLen(w) }

// outLen is PyTorch's pooling output length for an input of n.
func (p Pool2d) outLen(n int) int {
	span := n + 2*p.Pad - p.Kernel
	if !p.CeilMode {
		return span/p.Stride + 1
	}
	out := (span+p.Stride-1)/p.Stride + 1
	if (out-1)*p.Stride >= n+p.Pad { // the last window would start in the padding
		out--
	}
	return out
}

// Max computes max pooling of src (c x h x w) into dst (c x OH x OW); the
// padding never wins, as in PyTorch's MaxPool2d.
func (p Pool2d) Max(dst, src []float32, c, h, w int) {
	if p.separable(w) {
		p.pool3(dst, src, c, h, w, false)
		return
	}
	p.eachRow(dst, src, c, h, w, func(out, plane []float32, _, y0, y1 int) {
		for ox := range out {
			x0 := ox*p.Stride - p.Pad
			m := float32(math.Inf(-1))
			for y := y0; y < y1; y++ {
				m = max(m, maxOf(plane[y*w+max(x0, 0):y*w+min(x0+p.Kernel, w)]))
			}
			out[ox] = m
		}
	})
}

// maxOf returns the largest of taps, -Inf for none.
func maxOf(taps []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range taps {
		m = max(m, v)
	}
	return m
}

// sumOf returns the sum of taps.
func sumOf(taps []float32) float32 {
	var s float32
	for _, v := range taps {
		s += v
	}
	return s
}

// Avg computes average pooling of src (c x h x w) into dst (c x OH x OW).
// With PyTorch's default count_include_pad=True, padding counts as zeros:
// every window divides by its area inside the padded input (Kernel*Kernel
// but for windows that ceil mode lets hang over it). With ExcludePad, each
// divides by its pixels inside the image.
func (p Pool2d) Avg(dst, src []float32, c, h, w int) {
	if p.CeilMode || p.ExcludePad {
		p.avgClipped(dst, src, c, h, w)
		return
	}
	if p.separable(w) {
		p.pool3(dst, src, c, h, w, true)
		return
	}
	scale := 1 / float32(p.Kernel*p.Kernel)
	p.eachRow(dst, src, c, h, w, func(out, plane []float32, _, y0, y1 int) {
		for ox := range out {
			x0 := ox*p.Stride - p.Pad
			var s float32
			for y := y0; y < y1; y++ {
				s += sumOf(plane[y*w+max(x0, 0) : y*w+min(x0+p.Kernel, w)])
			}
			out[ox] = s * scale
		}
	})
}

// maxSeparableWidth bounds the rows of the 3x3 pools' column buffer, on
// the stack (Res2Net's widest is the stem's 112).
const maxSeparableWidth = 256

// separable reports whether pool3 computes p on rows w wide: a 3x3 pool
// without ceil mode, whose windows hanging over the padding it does not
// count.
func (p Pool2d) separable(w int) bool {
	return p.Kernel == 3 && !p.CeilMode && w <= maxSeparableWidth
}

// pool3 computes a 3x3 pool of the c planes of src (h x w) into dst, the
// average (with Avg's divisor, count_include_pad) or else the maximum, in
// two 1-D passes, since a window shares its columns with its
// neighbours': for every output row its input rows (clipped to the image)
// are reduced column by column into a buffer (three rows by the
// vectorised maxRows3 or sumRows3), then each window's three columns of
// it.
func (p Pool2d) pool3(dst, src []float32, c, h, w int, avg bool) {
	var buf [maxSeparableWidth]float32
	col := buf[:w]
	scale := 1 / float32(p.Kernel*p.Kernel)
	lo, hi := p.interior(p.outLen(w), w)
	p.eachRow(dst, src, c, h, w, func(out, plane []float32, _, y0, y1 int) {
		row := func(y int) []float32 { return plane[y*w : (y+1)*w] }
		switch {
		case y1-y0 == 3 && avg:
			sumRows3(col, row(y0), row(y0+1), row(y0+2))
		case y1-y0 == 3:
			maxRows3(col, row(y0), row(y0+1), row(y0+2))
		default: // a window clipped by the top or bottom edge
			copy(col, row(y0))
			for y := y0 + 1; y < y1; y++ {
				for x, v := range row(y) {
					if avg {
						col[x] += v
					} else {
						col[x] = max(col[x], v)
					}
				}
			}
		}
		for ox := range out {
			x0 := ox*p.Stride - p.Pad
			switch {
			case ox >= lo && ox < hi && avg:
				t := col[x0 : x0+3 : x0+3]
				out[ox] = (t[0] + t[1] + t[2]) * scale
			case ox >= lo && ox < hi:
				t := col[x0 : x0+3 : x0+3]
				out[ox] = max(max(t[0], t[1]), t[2])
			case avg:
				out[ox] = sumOf(col[max(x0, 0):min(x0+3, w)]) * scale
			default:
				out[ox] = maxOf(col[max(x0, 0):min(x0+3, w)])
			}
		}
	})
}

// avgClipped is Avg for ceil mode or ExcludePad: each window's divisor
// depends on where it lies, so it is counted per window. These pools
// (timm's avg-pool shortcut) are 2x2 and run once per stage: no fast path.
func (p Pool2d) avgClipped(dst, src []float32, c, h, w int) {
	p.eachRow(dst, src, c, h, w, func(out, plane []float32, oy, y0, y1 int) {
		padH := min(oy*p.Stride-p.Pad+p.Kernel, h+p.Pad) - (oy*p.Stride - p.Pad)
		for ox := range out {
			xs := ox*p.Stride - p.Pad
			x0, x1 := max(xs, 0), min(xs+p.Kernel, w)
			var s float32
			for y := y0; y < y1; y++ {
				for _, v := range plane[y*w+x0 : y*w+x1] {
					s += v
				}
			}
			count := (y1 - y0) * (x1 - x0)
			if !p.ExcludePad {
				count = padH * (min(xs+p.Kernel, w+p.Pad) - xs)
			}
			out[ox] = s / float32(count)
		}
	})
}

// eachRow calls row for every output row oy of each of the c planes of
// src (h x w), with that row of dst and the input rows [y0, y1) of its
// windows, clipped to the image. The pools share this walk; the loop over
// a row's windows, the hot one, stays in each pool's row, called once per
// row rather than per window.
func (p Pool2d) eachRow(dst, src []float32, c, h, w int, row func(out, plane []float32, oy, y0, y1 int)) {
	oh, ow := p.OutSize(h, w)
	for ch := range c {
		plane := src[ch*h*w : (ch+1)*h*w]
		for oy := range oh {
			y0, y1 := p.rows(oy, h)
			row(dst[(ch*oh+oy)*ow:(ch*oh+oy+1)*ow], plane, oy, y0, y1)
		}
	}
}

// rows returns the input rows [y0, y1) of output row oy, clipped to the image.
func (p Pool2d) rows(oy, h int) (y0, y1 int) {
	y0 = oy*p.Stride - p.Pad
	return max(y0, 0), min(y0+p.Kernel, h)
}

// interior returns the output columns [lo, hi) whose windows lie inside
// the w input columns. Windows there (in rows clear of the padding too) take
// the unrolled 3x3 path of the network's pools; the rest are clipped.
func (p Pool2d) interior(ow, w int) (lo, hi int) {
	return inside(ow, w-p.Kernel+1, -p.Pad, p.Stride)
}

// MaxPool2dRef is the plain definition of max pooling of an N x C x H x W
// tensor: every tap of every window tested against the image bounds.
func MaxPool2dRef(x *Tensor, p Pool2d) *Tensor {
	return poolRef(x, p, func(taps []float64, _ int) float64 {
		m := math.Inf(-1)
		for _, v := range taps {
			m = math.Max(m, v)
		}
		return m
	})
}

// AvgPool2dRef is the plain definition of average pooling of an
// N x C x H x W tensor, dividing each window's sum by its size clipped to
// the padded input (count_include_pad=True), or with ExcludePad by its
// number of pixels inside the image, as PyTorch computes it.
func AvgPool2dRef(x *Tensor, p Pool2d) *Tensor {
	return poolRef(x, p, func(taps []float64, count int) float64 {
		var s float64
		for _, v := range taps {
			s += v
		}
		if p.ExcludePad {
			count = len(taps)
		}
		return s / float64(count)
	})
}

// poolRef visits every window of x and reduces its in-image taps with
// reduce, which also gets the window's area inside the padded input.
func poolRef(x *Tensor, p Pool2d, reduce func(taps []float64, count int) float64) *Tensor {
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	oh, ow := p.OutSize(h, w)
	out := New(n, c, oh, ow)
	taps := make([]float64, 0, p.Kernel*p.Kernel)
	for img := range n * c {
		for oy := range oh {
			for ox := range ow {
				ys, xs := oy*p.Stride-p.Pad, ox*p.Stride-p.Pad
				ye, xe := min(ys+p.Kernel, h+p.Pad), min(xs+p.Kernel, w+p.Pad)
				taps = taps[:0]
				for y := ys; y < ys+p.Kernel; y++ {
					for xx := xs; xx < xs+p.Kernel; xx++ {
						if y >= 0 && y < h && xx >= 0 && xx < w {
							taps = append(taps, float64(x.Data[(img*h+y)*w+xx]))
						}
					}
				}
				out.Data[(img*oh+oy)*ow+ox] = float32(reduce(taps, (ye-ys)*(xe-xs)))
			}
		}
	}
	return out
}

// GlobalAvgPool averages each of the c planes of hw values in src into
// dst[ch], accumulating in float64.
func GlobalAvgPool(dst, src []float32, c, hw int) {
	for ch := range c {
		var s float64
		for _, v := range src[ch*hw : (ch+1)*hw] {
			s += float64(v)
		}
		dst[ch] = float32(s / float64(hw))
	}
}
