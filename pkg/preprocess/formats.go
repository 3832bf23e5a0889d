package preprocess

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/gif"
	"image/png"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// decodePNG decodes a PNG. 16-bit greyscale is clipped as Pillow's mode I
// is, also when Go widens it to NRGBA64 because of a tRNS chunk.
func decodePNG(data []byte) (*image.NRGBA, error) {
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	// IHDR: bit depth at byte 24, colour type at byte 25.
	if m, ok := img.(*image.NRGBA64); ok && data[24] == 16 && data[25] == 0 {
		b := m.Rect
		out := newOpaque(b.Dx(), b.Dy())
		for y := 0; y < b.Dy(); y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			o := out.Pix[y*out.Stride:]
			for x := 0; x < b.Dx(); x++ {
				v := clip16(binary.BigEndian.Uint16(row[8*x:]))
				o[4*x], o[4*x+1], o[4*x+2] = v, v, v
			}
		}
		return out, nil
	}
	return toNRGBA(img), nil
}

// decodeBMP decodes an uncompressed BMP.
func decodeBMP(data []byte) (*image.NRGBA, error) {
	img, err := bmp.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return toNRGBA(img), nil
}

// decodeTIFF decodes a baseline TIFF (uncompressed, LZW, Deflate or
// PackBits).
func decodeTIFF(data []byte) (*image.NRGBA, error) {
	img, err := tiff.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return toNRGBA(img), nil
}

// decodeWebP decodes a still WebP: lossy through libwebp's upsampling and
// conversion, lossless as stored; alpha is dropped.
func decodeWebP(data []byte) (*image.NRGBA, error) {
	img, err := webp.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	switch m := img.(type) {
	case *image.YCbCr:
		return webpYCbCrToNRGBA(m), nil
	case *image.NYCbCrA:
		return webpYCbCrToNRGBA(&m.YCbCr), nil
	}
	return toNRGBA(img), nil
}

// gifHead is what Pillow uses of a GIF besides the first frame's pixels.
type gifHead struct {
	w, h    int
	palette []byte // RGB triples of the first frame's colour table
	trans   int    // transparent index of the first frame, or -1
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
			pos += 10
			local, err := table(b[pos-1])
			if err != nil {
				return nil, err
			}
			if local != nil {
				g.palette = local
			}
			return g, nil
		default:
			return nil, errGIFHead
		}
	}
	return nil, errGIFHead
}

// decodeGIF returns the first frame the way Pillow 9.4 shows it: the
// logical screen, filled with the transparent index (or index 0) where the
// frame does not cover it, looked up in the frame's colour table (the
// transparent entry keeps its stored colour; indices past the table are
// grey, Pillow's default palette). Go's decoder only supplies the indices.
func decodeGIF(data []byte) (*image.NRGBA, error) {
	head, err := parseGIFHead(data)
	if err != nil {
		return nil, err
	}
	img, err := gif.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	frame, ok := img.(*image.Paletted)
	if !ok {
		return nil, errGIFHead
	}
	var pal [256][3]uint8
	for i := range pal {
		pal[i] = [3]uint8{uint8(i), uint8(i), uint8(i)}
	}
	for i := 0; i+3 <= len(head.palette); i += 3 {
		pal[i/3] = [3]uint8{head.palette[i], head.palette[i+1], head.palette[i+2]}
	}
	out := newOpaque(head.w, head.h)
	fill := pal[max(head.trans, 0)]
	for i := 0; i < len(out.Pix); i += 4 {
		out.Pix[i], out.Pix[i+1], out.Pix[i+2] = fill[0], fill[1], fill[2]
	}
	r := frame.Rect.Intersect(out.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := pal[frame.Pix[frame.PixOffset(x, y)]]
			o := out.PixOffset(x, y)
			out.Pix[o], out.Pix[o+1], out.Pix[o+2] = c[0], c[1], c[2]
		}
	}
	return out, nil
}
