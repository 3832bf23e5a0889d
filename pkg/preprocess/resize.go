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

// rgbImage is a packed 8-bit RGB raster.
type rgbImage struct {
	w, h, stride int
	pix          []uint8
}

// newRGB allocates a packed RGB raster.
func newRGB(w, h int) *rgbImage {
	return &rgbImage{w: w, h: h, stride: 3 * w, pix: make([]uint8, 3*w*h)}
}

// mirror turns the kernel's input indices end for end, for an input of n
// samples read in reverse.
func (k *kernel) mirror(n int) {
	for i := range k.start {
		t := k.taps[i]
		k.start[i] = n - k.start[i] - t
		w := k.w[i*k.ksize : i*k.ksize+t]
		for a, b := 0, t-1; a < b; a, b = a+1, b-1 {
			w[a], w[b] = w[b], w[a]
		}
	}
}

// horizontalRow resamples one row: out (packed RGB, one pixel per kernel
// position) from in (4 bytes a pixel).
func horizontalRow(out, in []uint8, k *kernel) {
	const half = 1 << (precisionBits - 1)
	for x := range len(out) / 3 {
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
