package preprocess

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"io"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// decodeBudget bounds the memory a decoder may hold for one image (a
// decoded raster, JPEG coefficients, a resize intermediate), so that with
// the file's own bytes (an uncompressed file is about as large as the
// raster) and the rest of the pipeline one image stays under 400 MiB.
// Images that would need more are refused with ErrTooLarge.
const decodeBudget = 192 << 20

// rasterBytes estimates the memory a Go decoder's image of cfg takes.
func rasterBytes(cfg image.Config) int64 {
	n := int64(cfg.Width) * int64(cfg.Height)
	switch cfg.ColorModel {
	case color.GrayModel:
		return n
	case color.Gray16Model:
		return 2 * n
	case color.YCbCrModel:
		return 3 * n
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel, color.NYCbCrAModel:
		return 4 * n
	}
	if _, ok := cfg.ColorModel.(color.Palette); ok {
		return n
	}
	return 8 * n
}

// checkRaster refuses an image whose Go raster exceeds decodeBudget.
func checkRaster(name string, cfg image.Config) error {
	if n := rasterBytes(cfg); n > decodeBudget {
		return fmt.Errorf("%w: decoding a %dx%d %s image needs %d MiB, more than the limit of %d MiB",
			ErrTooLarge, cfg.Width, cfg.Height, name, n>>20, decodeBudget>>20)
	}
	return nil
}

// goRows decodes with a Go decoder whose whole raster fits decodeBudget
// and hands its rows to sink.
func goRows(name string, config func(io.Reader) (image.Config, error), decode func(io.Reader) (image.Image, error)) func([]byte, rowSink) error {
	return func(data []byte, sink rowSink) error {
		cfg, err := config(bytes.NewReader(data))
		if err != nil {
			return err
		}
		if err := checkRaster(name, cfg); err != nil {
			return err
		}
		img, err := decode(bytes.NewReader(data))
		if err != nil {
			return err
		}
		rgbRows(img, sink)
		return nil
	}
}

// decodeGoPNG decodes a PNG with image/png (interlaced files), within
// decodeBudget counted as image/png's widest raster for the bit depth
// (a tRNS chunk widens grey to NRGBA). 16-bit greyscale is clipped as
// Pillow's mode I is, also when Go widens it to NRGBA64.
func decodeGoPNG(data []byte, sink rowSink) error {
	// IHDR: width, height at bytes 16 and 20, bit depth at 24, colour type at 25.
	w, h := int64(binary.BigEndian.Uint32(data[16:])), int64(binary.BigEndian.Uint32(data[20:]))
	perPixel := int64(4)
	if data[24] == 16 {
		perPixel = 8
	}
	if n := w * h * perPixel; n > decodeBudget {
		return fmt.Errorf("%w: decoding a %dx%d interlaced PNG needs %d MiB, more than the limit of %d MiB",
			ErrTooLarge, w, h, n>>20, decodeBudget>>20)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return err
	}
	m, ok := img.(*image.NRGBA64)
	if !ok || data[24] != 16 || data[25] != 0 {
		rgbRows(img, sink)
		return nil
	}
	o := make([]uint8, 4*m.Rect.Dx())
	for y := 0; y < m.Rect.Dy(); y++ {
		row := m.Pix[y*m.Stride:]
		for x := range m.Rect.Dx() {
			v := clip16(binary.BigEndian.Uint16(row[8*x:]))
			o[4*x], o[4*x+1], o[4*x+2] = v, v, v
		}
		sink.row(y, o)
	}
	return nil
}

// decodeBMPRows decodes an uncompressed BMP, refusing one whose pixel data
// is shorter than its header declares before allocating the raster.
func decodeBMPRows(data []byte, sink rowSink) error {
	if len(data) >= 30 {
		off, w, h, bpp := bmpLayout(data)
		if need := off + (w*bpp+31)/32*4*h; w > 0 && need > int64(len(data)) {
			return fmt.Errorf("file is truncated (the pixels need %d bytes, the file has %d)", need, len(data))
		}
	}
	return goRows("BMP", bmp.DecodeConfig, bmp.Decode)(data, sink)
}

// bmpLayout reads a BMP header (at least 30 bytes): the pixels' offset,
// the width, the height (rows stored either way up) and the bits a pixel.
func bmpLayout(data []byte) (off, w, h, bpp int64) {
	off = int64(binary.LittleEndian.Uint32(data[10:]))
	w = int64(int32(binary.LittleEndian.Uint32(data[18:])))
	h = int64(int32(binary.LittleEndian.Uint32(data[22:])))
	bpp = int64(binary.LittleEndian.Uint16(data[28:]))
	return off, w, max(h, -h), bpp
}

// bmpMaxPixelStart is where x/image/bmp starts reading the pixels at the
// latest whatever the header's offset says: after the file header, the
// largest info header (V5, 124 bytes) and a 256-colour palette.
const bmpMaxPixelStart = 14 + 124 + 256*4

// bmpPixelEnd is the codec's pixelEnd: x/image/bmp reads uncompressed
// rows padded to 4 bytes, from the header's offset or after the palette.
func bmpPixelEnd(data []byte) int64 {
	if len(data) < 30 {
		return 0
	}
	off, w, h, bpp := bmpLayout(data)
	if w <= 0 || bpp <= 0 {
		return -1
	}
	return max(off, bmpMaxPixelStart) + (w*bpp+31)/32*4*h
}

// decodeTIFFRows decodes a baseline TIFF (uncompressed, LZW, Deflate or
// PackBits).
var decodeTIFFRows = goRows("TIFF", tiff.DecodeConfig, tiff.Decode)

// decodeWebPRows decodes a still WebP: lossy through libwebp's upsampling
// and conversion, lossless as stored; alpha is dropped.
func decodeWebPRows(data []byte, sink rowSink) error {
	return goRows("WebP", webp.DecodeConfig, func(r io.Reader) (image.Image, error) {
		img, err := webp.Decode(r)
		if err != nil {
			return nil, err
		}
		switch m := img.(type) {
		case *image.YCbCr:
			return webpImage{m}, nil
		case *image.NYCbCrA:
			return webpImage{&m.YCbCr}, nil
		}
		return img, nil
	})(data, sink)
}

// webpImage marks lossy WebP pixels, which rgbRows converts as libwebp
// does rather than as libjpeg does.
type webpImage struct{ *image.YCbCr }

// gifHead is what Pillow uses of a GIF besides the first frame's pixels.
type gifHead struct {
	w, h     int
	palette  []byte // RGB triples of the first frame's colour table
	trans    int    // transparent index of the first frame, or -1
	frame    image.Rectangle
	litWidth int   // LZW minimum code size
	lzwBytes int64 // bytes of the first frame's LZW sub-blocks present
}

var errGIFHead = errors.New("malformed GIF header")

// parseGIFHead reads the logical screen, the colour table and the
// transparency of the first frame.
func parseGIFHead(b []byte) (*gifHead, error) {
	if len(b) < 13 {
		return nil, errGIFHead
	}
	g := &gifHead{w: int(binary.LittleEndian.Uint16(b[6:])), h: int(binary.LittleEndian.Uint16(b[8:])), trans: -1}
	pos := 13
	table := func(flags byte) ([]byte, error) {
		if flags&0x80 == 0 {
			return nil, nil
		}
		n := 3 << (flags&7 + 1)
		if pos+n > len(b) {
			return nil, errGIFHead
		}
		pos += n
		return b[pos-n : pos], nil
	}
	var err error
	if g.palette, err = table(b[10]); err != nil {
		return nil, err
	}
	for pos < len(b) {
		switch b[pos] {
		case 0x21: // extension: label, then data sub-blocks
			if pos+2 > len(b) {
				return nil, errGIFHead
			}
			if b[pos+1] == 0xf9 && pos+7 <= len(b) && b[pos+2] == 4 && b[pos+3]&1 != 0 {
				g.trans = int(b[pos+6])
			}
			pos += 2
			for pos < len(b) && b[pos] != 0 {
				pos += int(b[pos]) + 1
			}
			pos++
		case 0x2c: // image descriptor of the first frame
			if pos+10 > len(b) {
				return nil, errGIFHead
			}
			d := b[pos+1:]
			x0, y0 := int(binary.LittleEndian.Uint16(d)), int(binary.LittleEndian.Uint16(d[2:]))
			g.frame = image.Rect(x0, y0, x0+int(binary.LittleEndian.Uint16(d[4:])), y0+int(binary.LittleEndian.Uint16(d[6:])))
			pos += 10
			local, err := table(b[pos-1])
			if err != nil {
				return nil, err
			}
			if local != nil {
				g.palette = local
			}
			if pos < len(b) {
				g.litWidth = min(int(b[pos]), 11)
				for pos++; pos < len(b) && b[pos] != 0; pos += int(b[pos]) + 1 {
					g.lzwBytes += int64(min(int(b[pos]), len(b)-pos-1))
				}
			}
			return g, nil
		default:
			return nil, errGIFHead
		}
	}
	return nil, errGIFHead
}

// decodeGIFRows returns the first frame the way Pillow 9.4 shows it: the
// logical screen, filled with the transparent index (or index 0) where the
// frame does not cover it, looked up in the frame's colour table (the
// transparent entry keeps its stored colour; indices past the table are
// grey, Pillow's default palette). Go's decoder only supplies the indices.
// A frame larger than its LZW data can fill is truncated, as Pillow says,
// before any pixel memory is allocated.
func decodeGIFRows(data []byte, sink rowSink) error {
	head, err := parseGIFHead(data)
	if err != nil {
		return err
	}
	area := int64(head.frame.Dx()) * int64(head.frame.Dy())
	if max := lzwMaxPixels(head.lzwBytes, head.litWidth); area > max {
		return fmt.Errorf("file is truncated (a %dx%d frame, %d bytes of image data fill at most %d pixels)",
			head.frame.Dx(), head.frame.Dy(), head.lzwBytes, max)
	}
	if area > decodeBudget {
		return fmt.Errorf("%w: a %dx%d GIF frame needs %d MiB, more than the limit of %d MiB",
			ErrTooLarge, head.frame.Dx(), head.frame.Dy(), area>>20, decodeBudget>>20)
	}
	img, err := gif.Decode(bytes.NewReader(data))
	if err != nil {
		return err
	}
	frame, ok := img.(*image.Paletted)
	if !ok {
		return errGIFHead
	}
	var pal [256][3]uint8
	for i := range pal {
		pal[i] = [3]uint8{uint8(i), uint8(i), uint8(i)}
	}
	for i := 0; i+3 <= len(head.palette); i += 3 {
		pal[i/3] = [3]uint8{head.palette[i], head.palette[i+1], head.palette[i+2]}
	}
	fill := pal[max(head.trans, 0)]
	r := frame.Rect.Intersect(image.Rect(0, 0, head.w, head.h))
	o := make([]uint8, 4*head.w)
	for y := 0; y < head.h; y++ {
		for x := 0; x < head.w; x++ {
			c := fill
			if y >= r.Min.Y && y < r.Max.Y && x >= r.Min.X && x < r.Max.X {
				c = pal[frame.Pix[frame.PixOffset(x, y)]]
			}
			o[4*x], o[4*x+1], o[4*x+2] = c[0], c[1], c[2]
		}
		sink.row(y, o)
	}
	return nil
}

// lzwMaxPixels bounds the pixels n bytes of GIF LZW data can produce: at
// least litWidth+1 bits a code, and the k-th code after a clear expands to
// at most k pixels (never more than the 4096-entry table allows).
func lzwMaxPixels(n int64, litWidth int) int64 {
	const table = 4096
	codes := n * 8 / int64(litWidth+1)
	if codes <= table {
		return codes * (codes + 1) / 2
	}
	return table*(table+1)/2 + (codes-table)*table
}
