package preprocess

import (
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// A PNG reader that unfilters one row at a time straight into a rowSink,
// so that a small file declaring a large image (zeros compress 1000:1)
// costs two rows of memory instead of the whole raster that image/png
// allocates. Interlaced files, whose passes each span the image, go
// through image/png within decodeBudget. The RGB values are those of
// image/png plus Pillow's conventions (16-bit grey clipped, 16-bit colour
// keeping the high byte, out-of-range palette indices black), which the
// fixtures check against Pillow.

// pngHeader is what the row decoder needs of a PNG's chunks.
type pngHeader struct {
	w, h       int
	depth      int
	colorType  int
	interlaced bool
	palette    []byte // RGB triples
	idat       int    // offset of the first IDAT chunk
}

var errPNGFormat = errors.New("not a valid PNG")

// parsePNGHeader reads the chunks before the image data, checking their
// CRCs as Pillow does.
func parsePNGHeader(data []byte) (*pngHeader, error) {
	var p pngHeader
	seenIHDR := false
	for pos := 8; ; {
		if pos+8 > len(data) {
			return nil, io.ErrUnexpectedEOF
		}
		n := int64(binary.BigEndian.Uint32(data[pos:]))
		typ := string(data[pos+4 : pos+8])
		if n > int64(len(data)-pos-12) {
			return nil, io.ErrUnexpectedEOF
		}
		body := data[pos+8 : pos+8+int(n)]
		if typ == "IDAT" {
			if !seenIHDR || (p.colorType == 3 && p.palette == nil) {
				return nil, fmt.Errorf("%w: image data before the header or palette", errPNGFormat)
			}
			p.idat = pos
			return &p, nil
		}
		if crc32.ChecksumIEEE(data[pos+4:pos+8+int(n)]) != binary.BigEndian.Uint32(data[pos+8+int(n):]) {
			return nil, fmt.Errorf("%w: bad checksum in the %q chunk", errPNGFormat, typ)
		}
		switch typ {
		case "IHDR":
			if seenIHDR || n != 13 {
				return nil, fmt.Errorf("%w: bad header chunk", errPNGFormat)
			}
			seenIHDR = true
			p.w, p.h = int(binary.BigEndian.Uint32(body)), int(binary.BigEndian.Uint32(body[4:]))
			p.depth, p.colorType, p.interlaced = int(body[8]), int(body[9]), body[12] == 1
			if body[10] != 0 || body[11] != 0 || body[12] > 1 || !pngDepthOK(p.colorType, p.depth) {
				return nil, fmt.Errorf("%w: colour type %d at %d bits, compression %d, filter %d, interlace %d",
					ErrUnsupported, p.colorType, p.depth, body[10], body[11], body[12])
			}
		case "PLTE":
			if n%3 != 0 || n > 3*256 {
				return nil, fmt.Errorf("%w: bad palette length %d", errPNGFormat, n)
			}
			p.palette = body
		case "IEND":
			return nil, fmt.Errorf("%w: no image data", errPNGFormat)
		}
		if !seenIHDR {
			return nil, fmt.Errorf("%w: the first chunk is %q, not IHDR", errPNGFormat, typ)
		}
		pos += 12 + int(n)
	}
}

// pngDepthOK reports whether PNG allows the bit depth for the colour type.
func pngDepthOK(colorType, depth int) bool {
	switch colorType {
	case 0:
		return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16
	case 3:
		return depth == 1 || depth == 2 || depth == 4 || depth == 8
	case 2, 4, 6:
		return depth == 8 || depth == 16
	}
	return false
}

// idatReader reads the payloads of consecutive IDAT chunks as one stream
// (their CRCs unchecked, as Pillow does not check them).
type idatReader struct {
	data []byte
	pos  int // next byte of the current chunk's payload
	end  int // end of the current chunk's payload
}

func (r *idatReader) Read(b []byte) (int, error) {
	for r.pos == r.end {
		next := r.end + 4 // past the CRC
		if next+8 > len(r.data) || string(r.data[next+4:next+8]) != "IDAT" {
			return 0, io.EOF
		}
		n := int64(binary.BigEndian.Uint32(r.data[next:]))
		r.pos = next + 8
		r.end = r.pos + int(min(n, int64(len(r.data)-r.pos)))
	}
	n := copy(b, r.data[r.pos:r.end])
	r.pos += n
	return n, nil
}

// decodePNGRows decodes a PNG into sink.
func decodePNGRows(data []byte, sink rowSink) error {
	p, err := parsePNGHeader(data)
	if err != nil {
		return err
	}
	if p.interlaced {
		return decodeGoPNG(data, sink)
	}
	channels := map[int]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[p.colorType]
	bitsPP := int64(channels * p.depth)
	rowBytes := (int64(p.w)*bitsPP + 7) / 8
	if need := 2*(rowBytes+1) + 4*int64(p.w); need > decodeBudget {
		return fmt.Errorf("%w: a PNG row of %d pixels needs %d MiB, more than the limit of %d MiB",
			ErrTooLarge, p.w, need>>20, decodeBudget>>20)
	}
	// The reader starts "after the CRC" of a chunk ending where IDAT begins.
	zr, err := zlib.NewReader(&idatReader{data: data, pos: p.idat - 4, end: p.idat - 4})
	if err != nil {
		return err
	}
	bpp := max(1, int(bitsPP/8)) // filter distance
	cur, prev := make([]byte, rowBytes+1), make([]byte, rowBytes+1)
	out := make([]uint8, 4*p.w)
	var pal [256][3]uint8 // black past the palette, as image/png and libpng
	for i := 0; 3*i+3 <= len(p.palette); i++ {
		pal[i] = [3]uint8{p.palette[3*i], p.palette[3*i+1], p.palette[3*i+2]}
	}
	for y := 0; y < p.h; y++ {
		if _, err := io.ReadFull(zr, cur); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if err := unfilter(cur[0], cur[1:], prev[1:], bpp); err != nil {
			return err
		}
		pngRowToRGB(out, cur[1:], p, &pal)
		sink.row(y, out)
		cur, prev = prev, cur
	}
	return nil
}

// unfilter reverses a row's PNG filter in place, given the previous
// (unfiltered) row.
func unfilter(filter byte, row, prev []byte, bpp int) error {
	switch filter {
	case 0:
	case 1:
		for i := bpp; i < len(row); i++ {
			row[i] += row[i-bpp]
		}
	case 2:
		for i := range row {
			row[i] += prev[i]
		}
	case 3:
		for i := 0; i < bpp && i < len(row); i++ {
			row[i] += prev[i] / 2
		}
		for i := bpp; i < len(row); i++ {
			row[i] += uint8((int(row[i-bpp]) + int(prev[i])) / 2)
		}
	case 4:
		for i := 0; i < bpp && i < len(row); i++ {
			row[i] += prev[i]
		}
		for i := bpp; i < len(row); i++ {
			row[i] += paeth(row[i-bpp], prev[i], prev[i-bpp])
		}
	default:
		return fmt.Errorf("%w: bad filter type %d", errPNGFormat, filter)
	}
	return nil
}

// paeth is PNG's Paeth predictor.
func paeth(a, b, c uint8) uint8 {
	p := int(a) + int(b) - int(c)
	pa, pb, pc := abs(p-int(a)), abs(p-int(b)), abs(p-int(c))
	switch {
	case pa <= pb && pa <= pc:
		return a
	case pb <= pc:
		return b
	}
	return c
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// pngRowToRGB converts an unfiltered row to RGB (4 bytes a pixel).
func pngRowToRGB(o, row []byte, p *pngHeader, pal *[256][3]uint8) {
	w := p.w
	switch {
	case p.colorType == 0 && p.depth < 8, p.colorType == 3:
		perByte := 8 / p.depth
		mask := byte(1<<p.depth - 1)
		scale := byte(255 / int(mask))
		for x := 0; x < w; x++ {
			shift := 8 - p.depth*(x%perByte+1)
			v := row[x/perByte] >> shift & mask
			if p.colorType == 3 {
				c := pal[v]
				o[4*x], o[4*x+1], o[4*x+2] = c[0], c[1], c[2]
			} else {
				v *= scale
				o[4*x], o[4*x+1], o[4*x+2] = v, v, v
			}
		}
	case p.colorType == 0 && p.depth == 8:
		for x, v := range row[:w] {
			o[4*x], o[4*x+1], o[4*x+2] = v, v, v
		}
	case p.colorType == 0: // 16-bit grey is clipped, as Pillow's mode I
		for x := 0; x < w; x++ {
			v := clip16(binary.BigEndian.Uint16(row[2*x:]))
			o[4*x], o[4*x+1], o[4*x+2] = v, v, v
		}
	case p.colorType == 4:
		step := 2 * p.depth / 8
		for x := 0; x < w; x++ {
			v := row[x*step]
			o[4*x], o[4*x+1], o[4*x+2] = v, v, v
		}
	default: // RGB and RGBA, 8 or 16 bits: the (high) byte of each colour
		size := p.depth / 8
		highBytes(o, row, map[int]int{2: 3, 6: 4}[p.colorType]*size, size, w)
	}
}
