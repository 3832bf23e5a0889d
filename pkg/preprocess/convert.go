package preprocess

import (
	"image"
	"image/color"
)

// newOpaque allocates an NRGBA image of the given size with alpha 255.
func newOpaque(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 3; i < len(m.Pix); i += 4 {
		m.Pix[i] = 255
	}
	return m
}

// toNRGBA converts img to an opaque RGB image; see rgbRows.
func toNRGBA(img image.Image) *image.NRGBA {
	s := newImageSink(img.Bounds().Dx(), img.Bounds().Dy())
	rgbRows(img, s)
	return s.m
}

// rgbRows converts img to RGB rows for sink the way Pillow's
// convert("RGB") treats the corresponding Pillow mode: grey is repeated,
// palettes are looked up, alpha is dropped without compositing (the stored
// colour is kept; premultiplied colour is first divided by alpha as Pillow
// reads it), 16-bit colour keeps the high byte, 16-bit grey (Pillow modes
// I and I;16) is clipped to 255, CMYK uses Pillow's naive formula and YCbCr
// libjpeg-turbo's upsampling and colour conversion.
func rgbRows(img image.Image, sink rowSink) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	switch m := img.(type) {
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			sink.row(y, m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w])
		}
		return
	case *image.YCbCr:
		jpegYCbCrRows(m, sink)
		return
	case *image.NYCbCrA:
		jpegYCbCrRows(&m.YCbCr, sink)
		return
	case webpImage:
		webpYCbCrRows(m.YCbCr, sink)
		return
	}
	conv := rowConverter(img)
	o := make([]uint8, 4*w)
	for y := 0; y < h; y++ {
		conv(y, o)
		sink.row(y, o)
	}
}

// rowConverter returns a function writing row y of img (relative to its
// bounds) as RGB into o, 4 bytes a pixel; see rgbRows.
func rowConverter(img image.Image) func(y int, o []uint8) {
	b := img.Bounds()
	w := b.Dx()
	switch m := img.(type) {
	case *image.CMYK:
		return func(y int, o []uint8) { cmykRow(o, m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]) }
	case *image.Gray:
		return func(y int, o []uint8) {
			for x, v := range m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w] {
				o[4*x], o[4*x+1], o[4*x+2] = v, v, v
			}
		}
	case *image.Gray16:
		return func(y int, o []uint8) {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				v := clip16(uint16(row[2*x])<<8 | uint16(row[2*x+1]))
				o[4*x], o[4*x+1], o[4*x+2] = v, v, v
			}
		}
	case *image.RGBA:
		return func(y int, o []uint8) { unpremultiplyRow(o, m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]) }
	case *image.NRGBA64:
		return func(y int, o []uint8) { highBytes(o, m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):], 8, 2, w) }
	case *image.RGBA64:
		return func(y int, o []uint8) { highBytes(o, m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):], 8, 2, w) }
	case *image.Paletted:
		pal := paletteRGB(m.Palette)
		return func(y int, o []uint8) {
			for x, i := range m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w] {
				c := pal[i]
				o[4*x], o[4*x+1], o[4*x+2] = c[0], c[1], c[2]
			}
		}
	}
	return func(y int, o []uint8) {
		for x := 0; x < w; x++ {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			o[4*x], o[4*x+1], o[4*x+2] = c.R, c.G, c.B
		}
	}
}

// unpremultiplyRow reads premultiplied RGBA the way Pillow unpacks "RGBa"
// (TIFF associated alpha): colour*255/alpha truncated, black where alpha is
// zero.
func unpremultiplyRow(o, row []uint8) {
	for x := 0; x < len(row)/4; x++ {
		p, q := row[4*x:4*x+4], o[4*x:4*x+3]
		switch a := int(p[3]); a {
		case 0:
			q[0], q[1], q[2] = 0, 0, 0
		case 255:
			q[0], q[1], q[2] = p[0], p[1], p[2]
		default:
			for c := range q {
				q[c] = uint8(min(int(p[c])*255/a, 255))
			}
		}
	}
}

// clip16 is Pillow's conversion of a 16-bit grey sample to 8 bits: the
// value is clipped, not scaled.
func clip16(v uint16) uint8 {
	return uint8(min(v, 255))
}

// highBytes copies the first three samples of each of w pixels of step
// bytes, taking the first (most significant) byte of each sample of size
// bytes.
func highBytes(o, row []uint8, step, size, w int) {
	for x := 0; x < w; x++ {
		p := row[x*step:]
		o[4*x], o[4*x+1], o[4*x+2] = p[0], p[size], p[2*size]
	}
}

// paletteRGB returns the stored colours of a palette, 256 entries long.
// Non-premultiplied entries keep their colour whatever their alpha, as
// Pillow's P->RGB conversion does. Missing entries are black.
func paletteRGB(p color.Palette) *[256][3]uint8 {
	var pal [256][3]uint8
	for i, c := range p {
		if i == 256 {
			break
		}
		switch c := c.(type) {
		case color.NRGBA:
			pal[i] = [3]uint8{c.R, c.G, c.B}
		case color.RGBA:
			pal[i] = [3]uint8{c.R, c.G, c.B}
		default:
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			pal[i] = [3]uint8{n.R, n.G, n.B}
		}
	}
	return &pal
}

// cmykRow applies Pillow's CMYK->RGB conversion to raw (not inverted)
// CMYK samples: nk = 255-K, R = nk - C*nk/255 with Pillow's rounding.
func cmykRow(o, row []uint8) {
	for x := 0; x < len(row)/4; x++ {
		p := row[4*x : 4*x+4]
		nk := 255 - int(p[3])
		for c := 0; c < 3; c++ {
			t := int(p[c])*nk + 128
			o[4*x+c] = uint8(nk - ((t>>8)+t)>>8)
		}
	}
}
