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

// toNRGBA converts img to opaque RGB the way Pillow's convert("RGB") treats
// the corresponding Pillow mode: grey is repeated, palettes are looked up,
// alpha is dropped without compositing (the stored colour is kept;
// premultiplied colour is first divided by alpha as Pillow reads it),
// 16-bit colour keeps the high byte, 16-bit grey (Pillow modes I and I;16)
// is clipped to 255, CMYK uses Pillow's naive formula and YCbCr
// libjpeg-turbo's upsampling and colour conversion.
func toNRGBA(img image.Image) *image.NRGBA {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	switch m := img.(type) {
	case *image.YCbCr:
		return jpegYCbCrToNRGBA(m)
	case *image.NYCbCrA:
		return jpegYCbCrToNRGBA(&m.YCbCr)
	case *image.CMYK:
		return cmykToNRGBA(m)
	case *image.Gray:
		out := newOpaque(w, h)
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			o := out.Pix[y*out.Stride:]
			for x := 0; x < w; x++ {
				v := row[x]
				o[4*x], o[4*x+1], o[4*x+2] = v, v, v
			}
		}
		return out
	case *image.Gray16:
		out := newOpaque(w, h)
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			o := out.Pix[y*out.Stride:]
			for x := 0; x < w; x++ {
				v := clip16(uint16(row[2*x])<<8 | uint16(row[2*x+1]))
				o[4*x], o[4*x+1], o[4*x+2] = v, v, v
			}
		}
		return out
	case *image.NRGBA:
		return copyRGB(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, 4, 1, w, h)
	case *image.RGBA:
		return unpremultiply(m)
	case *image.NRGBA64:
		return copyRGB(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, 8, 2, w, h)
	case *image.RGBA64:
		return copyRGB(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, 8, 2, w, h)
	case *image.Paletted:
		pal := paletteRGB(m.Palette)
		out := newOpaque(w, h)
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			o := out.Pix[y*out.Stride:]
			for x := 0; x < w; x++ {
				c := pal[row[x]]
				o[4*x], o[4*x+1], o[4*x+2] = c[0], c[1], c[2]
			}
		}
		return out
	}
	out := newOpaque(w, h)
	for y := 0; y < h; y++ {
		o := out.Pix[y*out.Stride:]
		for x := 0; x < w; x++ {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			o[4*x], o[4*x+1], o[4*x+2] = c.R, c.G, c.B
		}
	}
	return out
}

// unpremultiply reads premultiplied RGBA the way Pillow unpacks "RGBa"
// (TIFF associated alpha): colour*255/alpha truncated, black where alpha is
// zero.
func unpremultiply(m *image.RGBA) *image.NRGBA {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	out := newOpaque(w, h)
	for y := 0; y < h; y++ {
		row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
		o := out.Pix[y*out.Stride:]
		for x := 0; x < w; x++ {
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
	return out
}

// clip16 is Pillow's conversion of a 16-bit grey sample to 8 bits: the
// value is clipped, not scaled.
func clip16(v uint16) uint8 {
	return uint8(min(v, 255))
}

// copyRGB copies the first three samples of each pixel of a raster with
// step bytes a pixel, taking the first (most significant) byte of each
// sample of size bytes.
func copyRGB(pix []uint8, stride, step, size, w, h int) *image.NRGBA {
	out := newOpaque(w, h)
	for y := 0; y < h; y++ {
		row := pix[y*stride:]
		o := out.Pix[y*out.Stride:]
		for x := 0; x < w; x++ {
			p := row[x*step:]
			o[4*x], o[4*x+1], o[4*x+2] = p[0], p[size], p[2*size]
		}
	}
	return out
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

// cmykToNRGBA applies Pillow's CMYK->RGB conversion to raw (not inverted)
// CMYK samples: nk = 255-K, R = nk - C*nk/255 with Pillow's rounding.
func cmykToNRGBA(m *image.CMYK) *image.NRGBA {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	out := newOpaque(w, h)
	for y := 0; y < h; y++ {
		row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
		o := out.Pix[y*out.Stride:]
		for x := 0; x < w; x++ {
			p := row[4*x : 4*x+4]
			nk := 255 - int(p[3])
			for c := 0; c < 3; c++ {
				t := int(p[c])*nk + 128
				o[4*x+c] = uint8(nk - ((t>>8)+t)>>8)
			}
		}
	}
	return out
}
