package preprocess

import "math"

// Pillow's 8-bit resampler works in fixed point with this many fractional
// bits (32 - 8 - 2: 8 bits of result, 2 for filters with negative lobes).
const precisionBits = 32 - 8 - 2

// kernel holds the fixed-point bilinear weights of one resampling
// direction, for output positions [lo, lo+n) of a resize to outSize.
type kernel struct {
	lo    int     // first output position covered
	start []int   // first input index of each output position
	taps  []int   // number of weights of each output position
	ksize int     // stride of weights
	w     []int32 // weights, ksize per output position
}

// newKernel computes the weights Pillow 9.4's precompute_coeffs and
// normalize_coeffs_8bpc give for resizing inSize samples to outSize with the
// antialiased bilinear (triangle) filter, for output positions [lo, hi).
// The float64 conversions around products keep the compiler from fusing
// them into FMAs, which would change rounding relative to Pillow's C.
func newKernel(inSize, outSize, lo, hi int) *kernel {
	// Pillow passes the box edges as C floats.
	scale := float64(float32(inSize)) / float64(outSize)
	filterScale := math.Max(scale, 1)
	support := 1.0 * filterScale // the bilinear filter's support is 1
	ksize := int(math.Ceil(support))*2 + 1
	n := hi - lo
	k := &kernel{lo: lo, start: make([]int, n), taps: make([]int, n), ksize: ksize, w: make([]int32, n*ksize)}
	ss := 1.0 / filterScale
	pre := make([]float64, ksize)
	for i := 0; i < n; i++ {
		center := float64((float64(lo+i) + 0.5) * scale)
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			t := float64((float64(x+xmin) - center + 0.5) * ss)
			w := triangle(t)
			pre[x] = w
			ww += w
		}
		row := k.w[i*ksize : (i+1)*ksize]
		for x := 0; x < xmax; x++ {
			v := pre[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				row[x] = int32(-0.5 + float64(v*(1<<precisionBits)))
			} else {
				row[x] = int32(0.5 + float64(v*(1<<precisionBits)))
			}
		}
		k.start[i] = xmin
		k.taps[i] = xmax
	}
	return k
}

// triangle is Pillow's bilinear filter.
func triangle(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// clip8 turns a fixed-point accumulator into a byte as Pillow does.
func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// rgbImage is an 8-bit raster whose pixels start with R, G, B: step is 3
// for packed RGB or 4 for the NRGBA images Decode returns (the only kind
// the horizontal pass reads).
type rgbImage struct {
	w, h, step, stride int
	pix                []uint8
}

// newRGB allocates a packed RGB raster.
func newRGB(w, h int) *rgbImage {
	return &rgbImage{w: w, h: h, step: 3, stride: 3 * w, pix: make([]uint8, 3*w*h)}
}

// resizeRegion reproduces Pillow 9.4's Image.resize((outW, outH),
// BILINEAR) on src, but computes only the output rectangle [x0,x1) x
// [y0,y1), which must lie inside the output. Each output pixel depends only
// on its own weights, so the region is bit-identical to cropping Pillow's
// full result. Like Pillow, it runs a horizontal pass into an 8-bit
// intermediate (only the rows the vertical pass reads), then a vertical
// pass; a pass is skipped when its dimension keeps its size.
func resizeRegion(src *rgbImage, outW, outH, x0, y0, x1, y1 int) *rgbImage {
	if outW == src.w && outH == src.h {
		return cropRGB(src, x0, y0, x1, y1)
	}
	var vk *kernel
	rowLo, rowHi := y0, y1 // source rows the vertical pass reads
	if outH != src.h {
		vk = newKernel(src.h, outH, y0, y1)
		rowLo = vk.start[0]
		last := len(vk.start) - 1
		rowHi = vk.start[last] + vk.taps[last]
		for i := range vk.start {
			vk.start[i] -= rowLo
		}
	}
	var tmp *rgbImage
	if outW != src.w {
		tmp = newRGB(x1-x0, rowHi-rowLo)
		horizontalPass(tmp, src, rowLo, newKernel(src.w, outW, x0, x1))
	} else {
		tmp = cropRGB(src, x0, rowLo, x1, rowHi)
	}
	if vk == nil {
		return tmp
	}
	out := newRGB(tmp.w, y1-y0)
	verticalPass(out, tmp, vk)
	return out
}

// horizontalPass fills dst (packed, dst.w = number of kernel positions)
// from rows [rowOff, rowOff+dst.h) of src, which has 4 bytes a pixel.
func horizontalPass(dst, src *rgbImage, rowOff int, k *kernel) {
	const half = 1 << (precisionBits - 1)
	for y := 0; y < dst.h; y++ {
		in := src.pix[(y+rowOff)*src.stride:]
		out := dst.pix[y*dst.stride : (y+1)*dst.stride]
		for x := 0; x < dst.w; x++ {
			w := k.w[x*k.ksize : x*k.ksize+k.taps[x]]
			p := in[k.start[x]*4 : (k.start[x]+len(w))*4]
			s0, s1, s2 := int32(half), int32(half), int32(half)
			for _, c := range w {
				q := p[:3:len(p)]
				s0 += int32(q[0]) * c
				s1 += int32(q[1]) * c
				s2 += int32(q[2]) * c
				p = p[4:]
			}
			o := out[x*3 : x*3+3]
			o[0], o[1], o[2] = clip8(s0), clip8(s1), clip8(s2)
		}
	}
}

// verticalPass fills dst (dst.h = number of kernel positions) from the
// packed src, whose row 0 is the kernel's input index 0.
func verticalPass(dst, src *rgbImage, k *kernel) {
	const half = 1 << (precisionBits - 1)
	stride := src.stride
	acc := make([]int32, stride)
	for y := 0; y < dst.h; y++ {
		for i := range acc {
			acc[i] = half
		}
		w := k.w[y*k.ksize : y*k.ksize+k.taps[y]]
		for i, c := range w {
			row := src.pix[(k.start[y]+i)*stride : (k.start[y]+i+1)*stride]
			for j, v := range row {
				acc[j] += int32(v) * c
			}
		}
		out := dst.pix[y*stride : (y+1)*stride]
		for j, v := range acc {
			out[j] = clip8(v)
		}
	}
}

// cropRGB copies the rectangle [x0,x1) x [y0,y1) of src into a packed
// raster.
func cropRGB(src *rgbImage, x0, y0, x1, y1 int) *rgbImage {
	out := newRGB(x1-x0, y1-y0)
	for y := y0; y < y1; y++ {
		in := src.pix[y*src.stride+x0*src.step:]
		o := out.pix[(y-y0)*out.stride:]
		for x := 0; x < out.w; x++ {
			o[3*x], o[3*x+1], o[3*x+2] = in[x*src.step], in[x*src.step+1], in[x*src.step+2]
		}
	}
	return out
}
