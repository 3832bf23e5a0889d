package preprocess

import "image"

// Pillow gets RGB from libjpeg-turbo (JPEG) and libwebp (lossy WebP),
// which upsample subsampled chroma with triangle ("fancy") filters and
// convert in fixed point. The code below reproduces both, for the JPEG
// decoder's planes and for the YCbCr images Go's WebP decoder returns:
// nearest-neighbour chroma and Go's own conversion differ from Pillow by up
// to ~50 levels at colour edges.

// chroma is one subsampled chroma plane of a YCbCr image.
type chroma struct {
	pix    []uint8
	stride int
	w, h   int // samples covering the image, as libjpeg's downsampled_width/height
	// fetch, when set, supplies the rows instead of pix (the JPEG
	// decoder's window of decoded rows).
	fetch func(cy int) []uint8
}

// row returns chroma row cy, clamped to the plane the way libjpeg and
// libwebp replicate the first and last rows for context.
func (c *chroma) row(cy int) []uint8 {
	cy = max(0, min(cy, c.h-1))
	if c.fetch != nil {
		return c.fetch(cy)[:c.w]
	}
	return c.pix[cy*c.stride : cy*c.stride+c.w]
}

// subsampling returns the horizontal and vertical chroma factors.
func subsampling(r image.YCbCrSubsampleRatio) (int, int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return 2, 1
	case image.YCbCrSubsampleRatio420:
		return 2, 2
	case image.YCbCrSubsampleRatio440:
		return 1, 2
	case image.YCbCrSubsampleRatio411:
		return 4, 1
	case image.YCbCrSubsampleRatio410:
		return 4, 2
	}
	return 1, 1
}

// chromaPlanes returns the Cb and Cr planes of m, which must have its
// origin on a chroma sample (as decoded images do).
func chromaPlanes(m *image.YCbCr, hs, vs int) (cb, cr *chroma) {
	b := m.Rect
	w := (b.Max.X+hs-1)/hs - b.Min.X/hs
	h := (b.Max.Y+vs-1)/vs - b.Min.Y/vs
	off := m.COffset(b.Min.X, b.Min.Y)
	return &chroma{pix: m.Cb[off:], stride: m.CStride, w: w, h: h}, &chroma{pix: m.Cr[off:], stride: m.CStride, w: w, h: h}
}

// jpegUpsampleRow returns the chroma of output row y at full horizontal
// resolution (at least c.w*hs samples), computed into buf (len >= c.w*hs)
// unless no upsampling is needed. It uses libjpeg-turbo's upsampler for the
// sampling factors: fancy (triangle) h2v1, h1v2 and h2v2 when the plane is
// wider than two samples (h1v2 always), box replication otherwise.
func jpegUpsampleRow(c *chroma, hs, vs, y int, buf []uint8) []uint8 {
	n := c.w
	cy := y / vs
	near := c.row(cy)[:n]
	var far []uint8
	if vs == 2 {
		if y%2 == 0 {
			far = c.row(cy - 1)[:n]
		} else {
			far = c.row(cy + 1)[:n]
		}
	}
	out := buf[:n*hs]
	switch {
	case hs == 1 && vs == 1:
		return near
	case hs == 2 && vs == 1 && n > 2:
		out[0], out[2*n-1] = near[0], near[n-1]
		for i := 0; i < n-1; i++ {
			// The pair between samples i and i+1, 3/4 from the nearer.
			a, b := int(near[i]), int(near[i+1])
			out[2*i+1] = uint8((3*a + b + 2) >> 2)
			out[2*i+2] = uint8((3*b + a + 1) >> 2)
		}
	case hs == 1 && vs == 2:
		bias := 1 + y%2
		for i, v := range near {
			out[i] = uint8((3*int(v) + int(far[i]) + bias) >> 2)
		}
	case hs == 2 && vs == 2 && n > 2:
		this := 3*int(near[0]) + int(far[0])
		last := this
		for i := 0; i < n-1; i++ {
			next := 3*int(near[i+1]) + int(far[i+1])
			out[2*i] = uint8((3*this + last + 8) >> 4)
			out[2*i+1] = uint8((3*this + next + 7) >> 4)
			last, this = this, next
		}
		out[2*n-2] = uint8((3*this + last + 8) >> 4)
		out[2*n-1] = uint8((4*this + 7) >> 4)
	default:
		for i := range out {
			out[i] = near[i/hs]
		}
	}
	return out
}

// libjpeg-turbo's YCbCr->RGB tables (jdcolor.c, 16 fractional bits).
var jpegCrR, jpegCbB, jpegCrG, jpegCbG = func() (crR, cbB [256]int32, crG, cbG [256]int32) {
	const scale, half = 16, 1 << 15
	fix := func(x float64) int32 { return int32(x*(1<<scale) + 0.5) }
	for i := 0; i < 256; i++ {
		x := int32(i - 128)
		crR[i] = (fix(1.40200)*x + half) >> scale
		cbB[i] = (fix(1.77200)*x + half) >> scale
		crG[i] = -fix(0.71414) * x
		cbG[i] = -fix(0.34414)*x + half
	}
	return
}()

// clamp255 limits v to a byte.
func clamp255(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// jpegYCbCrRows converts YCbCr to RGB rows as libjpeg-turbo does with its
// default settings (fancy upsampling, integer conversion).
func jpegYCbCrRows(m *image.YCbCr, sink rowSink) {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	hs, vs := subsampling(m.SubsampleRatio)
	cb, cr := chromaPlanes(m, hs, vs)
	dx, dy := b.Min.X-b.Min.X/hs*hs, b.Min.Y-b.Min.Y/vs*vs
	o := make([]uint8, 4*w)
	cbRow, crRow := make([]uint8, cb.w*hs), make([]uint8, cr.w*hs)
	for y := 0; y < h; y++ {
		u := jpegUpsampleRow(cb, hs, vs, y+dy, cbRow)[dx:]
		v := jpegUpsampleRow(cr, hs, vs, y+dy, crRow)[dx:]
		yRow := m.Y[m.YOffset(b.Min.X, b.Min.Y+y):]
		ycbcrRowToRGB(o, yRow[:w], u[:w], v[:w])
		sink.row(y, o)
	}
}

// ycbcrRowToRGB converts a row with libjpeg-turbo's integer YCbCr->RGB
// (jdcolor.c) into NRGBA pixels (alpha untouched).
func ycbcrRowToRGB(o, y, cb, cr []uint8) {
	o = o[:4*len(y)]
	cb, cr = cb[:len(y)], cr[:len(y)]
	for x, yv := range y {
		yy, u, v := int32(yv), cb[x], cr[x]
		p := o[4*x : 4*x+3]
		p[0] = clamp255(yy + jpegCrR[v])
		p[1] = clamp255(yy + (jpegCbG[u]+jpegCrG[v])>>16)
		p[2] = clamp255(yy + jpegCbB[u])
	}
}

// webpUpsampleRow writes into out (len >= width) the chroma of output row y
// as libwebp's fancy upsampler computes it: each output sample mixes the
// four nearest chroma samples 9:3:3:1, rounded in libwebp's two steps.
func webpUpsampleRow(c *chroma, y, width int, out []uint8) {
	cy := (y + 1) / 2 // rows 2k-1 and 2k sit between chroma rows k-1 and k
	var near, far []uint8
	if y%2 == 1 {
		near, far = c.row(cy-1), c.row(cy)
	} else {
		near, far = c.row(cy), c.row(cy-1)
	}
	out[0] = uint8((3*int(near[0]) + int(far[0]) + 2) >> 2)
	for x := 1; x <= (width-1)/2; x++ {
		a, b := x-1, x
		avg := int(near[a]) + int(near[b]) + int(far[a]) + int(far[b]) + 8
		d12 := (avg + 2*(int(near[b])+int(far[a]))) >> 3
		d03 := (avg + 2*(int(near[a])+int(far[b]))) >> 3
		out[2*x-1] = uint8((d12 + int(near[a])) >> 1)
		out[2*x] = uint8((d03 + int(near[b])) >> 1)
	}
	if width%2 == 0 {
		l := width/2 - 1
		out[width-1] = uint8((3*int(near[l]) + int(far[l]) + 2) >> 2)
	}
}

// webpClip is libwebp's VP8Clip8 on a value with 6 fractional bits.
func webpClip(v int) uint8 {
	if v&^(256<<6-1) == 0 {
		return uint8(v >> 6)
	}
	if v < 0 {
		return 0
	}
	return 255
}

// webpYCbCrRows converts decoded lossy WebP (4:2:0) to RGB rows as libwebp
// does by default (fancy upsampling, 14-bit fixed-point conversion).
func webpYCbCrRows(m *image.YCbCr, sink rowSink) {
	if m.SubsampleRatio != image.YCbCrSubsampleRatio420 || m.Rect.Min != (image.Point{}) {
		jpegYCbCrRows(m, sink)
		return
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	cb, cr := chromaPlanes(m, 2, 2)
	o := make([]uint8, 4*w)
	uRow, vRow := make([]uint8, w), make([]uint8, w)
	mulHi := func(v, c int) int { return v * c >> 8 }
	for y := 0; y < h; y++ {
		webpUpsampleRow(cb, y, w, uRow)
		webpUpsampleRow(cr, y, w, vRow)
		yRow := m.Y[y*m.YStride:]
		for x := 0; x < w; x++ {
			yy := mulHi(int(yRow[x]), 19077)
			u, v := int(uRow[x]), int(vRow[x])
			o[4*x] = webpClip(yy + mulHi(v, 26149) - 14234)
			o[4*x+1] = webpClip(yy - mulHi(u, 6419) - mulHi(v, 13320) + 8708)
			o[4*x+2] = webpClip(yy + mulHi(u, 33050) - 17685)
		}
		sink.row(y, o)
	}
}
