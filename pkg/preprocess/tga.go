package preprocess

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
)

// Truevision TGA as Pillow 9.4's TgaImagePlugin reads it: colour-mapped
// (8-bit indices), true colour (16-bit 5-5-5, 24-bit, 32-bit) and grey
// (1, 8, 16-bit with alpha), uncompressed or run-length encoded. Rows are
// stored bottom-up unless the descriptor says top-down, and right to left
// when it says so: the decoder hands them to the sink in file order and
// reports the flips as an orientation, which the sinks apply. As in
// Pillow, a palette starts at its first-entry index (entries before it
// black), indices past it are grey (Pillow's default palette), a run
// packet may not cross a row end while a literal packet may.

// tgaHeader is a parsed TGA header.
type tgaHeader struct {
	imageType, depth int
	w, h             int
	flags            byte
	palette          [256][3]uint8
	data             int // offset of the pixel data
}

var errTGAHeader = errors.New("malformed TGA header")

// tgaHeaderLen is the fixed header's length.
const tgaHeaderLen = 18

// parseTGAHeader checks the header the way Pillow accepts it and reads
// the colour map.
func parseTGAHeader(b []byte) (*tgaHeader, error) {
	if len(b) < tgaHeaderLen {
		return nil, io.ErrUnexpectedEOF
	}
	t := &tgaHeader{imageType: int(b[2]), depth: int(b[16]), flags: b[17],
		w: int(binary.LittleEndian.Uint16(b[12:])), h: int(binary.LittleEndian.Uint16(b[14:]))}
	if !isTGA(b) {
		return nil, errTGAHeader
	}
	pos := tgaHeaderLen + int(b[0]) // after the ID field
	if pos > len(b) {
		return nil, io.ErrUnexpectedEOF
	}
	for i := range t.palette {
		t.palette[i] = [3]uint8{uint8(i), uint8(i), uint8(i)}
	}
	if b[1] == 1 {
		start, n, depth := int(binary.LittleEndian.Uint16(b[3:])), int(binary.LittleEndian.Uint16(b[5:])), int(b[7])
		size := depth / 8
		if depth != 16 && depth != 24 && depth != 32 {
			return nil, fmt.Errorf("%w: %d-bit colour map entries", ErrUnsupported, depth)
		}
		if pos+n*size > len(b) {
			return nil, io.ErrUnexpectedEOF
		}
		for i := 0; i < start+n && i < 256; i++ {
			t.palette[i] = [3]uint8{}
			if i < start {
				continue
			}
			e := b[pos+(i-start)*size:]
			if depth == 16 {
				t.palette[i] = bgr15(binary.LittleEndian.Uint16(e))
			} else {
				t.palette[i] = [3]uint8{e[2], e[1], e[0]}
			}
		}
		pos += n * size
	}
	t.data = pos
	return t, nil
}

// isTGA reports whether b starts with a TGA header Pillow decodes: TGA
// has no signature, so every field must be plausible.
func isTGA(b []byte) bool {
	if len(b) < tgaHeaderLen || b[1] > 1 {
		return false
	}
	w, h := binary.LittleEndian.Uint16(b[12:]), binary.LittleEndian.Uint16(b[14:])
	if w == 0 || h == 0 {
		return false
	}
	if b[1] == 1 && b[7] != 16 && b[7] != 24 && b[7] != 32 && b[7] != 15 {
		return false
	}
	switch typ, depth := b[2]&^8, b[16]; {
	case b[2]&^8 == 0 || b[2] > 11:
		return false
	case typ == 1:
		return depth == 8
	case typ == 2:
		return depth == 16 || depth == 24 || depth == 32
	case typ == 3:
		return depth == 1 || depth == 8 || depth == 16
	}
	return false
}

// bgr15 is Pillow's "BGR;15" unpacking of a 16-bit pixel (the top bit
// ignored).
func bgr15(v uint16) [3]uint8 {
	return [3]uint8{uint8(int(v>>10&31) * 255 / 31), uint8(int(v>>5&31) * 255 / 31), uint8(int(v&31) * 255 / 31)}
}

// decodeTGAConfig reads a TGA header.
func decodeTGAConfig(r io.Reader) (image.Config, error) {
	var b [tgaHeaderLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return image.Config{}, err
	}
	if !isTGA(b[:]) {
		return image.Config{}, errTGAHeader
	}
	return image.Config{Width: int(binary.LittleEndian.Uint16(b[12:])), Height: int(binary.LittleEndian.Uint16(b[14:]))}, nil
}

// tgaOrientation is the EXIF orientation equivalent to the row order of
// the file's descriptor byte: bottom-up unless bit 5, right to left with
// bit 4.
func tgaOrientation(data []byte) int {
	if len(data) < tgaHeaderLen {
		return 1
	}
	return [4]int{4, 3, 1, 2}[data[17]>>4&3]
}

// decodeTGARows decodes a TGA into sink, rows in file order (see
// tgaOrientation).
func decodeTGARows(data []byte, sink rowSink) error {
	t, err := parseTGAHeader(data)
	if err != nil {
		return err
	}
	rowBytes := (t.w*t.depth + 7) / 8
	body := data[t.data:]
	o := make([]uint8, 4*t.w)
	if t.imageType&8 == 0 {
		if need := int64(rowBytes) * int64(t.h); need > int64(len(body)) {
			return errTruncated(need, len(body))
		}
		for y := 0; y < t.h; y++ {
			t.rowToRGB(o, body[y*rowBytes:][:rowBytes])
			sink.row(y, o)
		}
		return nil
	}
	if t.depth == 1 {
		return fmt.Errorf("%w: run-length encoded 1-bit TGA", ErrUnsupported)
	}
	// Every packet (at least 2 bytes) gives at most 128 pixels.
	if need := int64(t.w) * int64(t.h) / 128 * 2; need > int64(len(body)) {
		return errTruncated(need, len(body))
	}
	size := t.depth / 8
	row := make([]byte, rowBytes)
	x, y, pos := 0, 0, 0 // bytes filled in row, rows done, read position
	for y < t.h {
		if pos >= len(body) {
			return errTruncated(int64(len(body)+1), len(body))
		}
		n := size * (int(body[pos]&0x7f) + 1)
		if body[pos]&0x80 != 0 {
			if pos+1+size > len(body) {
				return errTruncated(int64(pos+1+size), len(body))
			}
			if x+n > rowBytes {
				return errors.New("a run crosses the end of a row (buffer overrun)")
			}
			for i := 0; i < n; i += size {
				copy(row[x+i:], body[pos+1:pos+1+size])
			}
			pos += 1 + size
			x += n
		} else {
			if pos+1+n > len(body) {
				return errTruncated(int64(pos+1+n), len(body))
			}
			lit := body[pos+1 : pos+1+n]
			pos += 1 + n
			for len(lit) > 0 && y < t.h {
				k := copy(row[x:], lit)
				lit, x = lit[k:], x+k
				if x == rowBytes {
					t.rowToRGB(o, row)
					sink.row(y, o)
					x, y = 0, y+1
				}
			}
			continue
		}
		if x == rowBytes {
			t.rowToRGB(o, row)
			sink.row(y, o)
			x, y = 0, y+1
		}
	}
	return nil
}

// rowToRGB converts one stored row to RGB (4 bytes a pixel).
func (t *tgaHeader) rowToRGB(o, row []byte) {
	for x := 0; x < t.w; x++ {
		var c [3]uint8
		switch {
		case t.depth == 1:
			v := 255 * (row[x/8] >> (7 - x%8) & 1)
			c = [3]uint8{v, v, v}
		case t.imageType&7 == 1:
			c = t.palette[row[x]]
		case t.imageType&7 == 3:
			v := row[x*t.depth/8] // grey, then alpha for 16 bits
			c = [3]uint8{v, v, v}
		case t.depth == 16:
			c = bgr15(binary.LittleEndian.Uint16(row[2*x:]))
		default:
			p := row[x*t.depth/8:]
			c = [3]uint8{p[2], p[1], p[0]}
		}
		o[4*x], o[4*x+1], o[4*x+2] = c[0], c[1], c[2]
	}
}
