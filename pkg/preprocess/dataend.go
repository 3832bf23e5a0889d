package preprocess

import (
	"encoding/binary"
)

// Where an image's data ends, found by walking its structure as a stream
// arrives, so that readAll stops there: an image followed by a gigabyte
// of anything on standard input costs memory for the image alone. Pillow
// ignores what follows an image's end, and so does the decoder, which is
// handed the bytes up to it. A walker returns the end's offset once it
// has seen it, 0 while it needs more bytes, and -1 when the structure is
// not one it can follow (the stream is then read to its end or the cap,
// and the decoder reports the problem). TIFF, whose parts lie anywhere
// the offsets say, and run-length TGA are read to their end.

// endWalk is a walker's progress through the bytes read so far.
type endWalk struct {
	head   []byte   // the first bytes read
	chunks [][]byte // the bytes read after them, in order
	total  int64    // len(head) plus the chunks' lengths
	pos    int64    // the offset of the next part to read
	state  int      // the walker's own: which kind of part is at pos
}

// at returns the n bytes at off, or nil until they have all been read.
func (w *endWalk) at(off int64, n int) []byte {
	if off < 0 || off+int64(n) > w.total {
		return nil
	}
	s := w.span(off)
	if len(s) >= n {
		return s[:n]
	}
	out := make([]byte, 0, n) // across chunks: a few header bytes
	for len(out) < n {
		s = w.span(off + int64(len(out)))
		out = append(out, s[:min(len(s), n-len(out))]...)
	}
	return out
}

// span returns the bytes read from off to the end of the piece holding
// them, or nil when off has not been read.
func (w *endWalk) span(off int64) []byte {
	if off < int64(len(w.head)) {
		return w.head[off:]
	}
	off -= int64(len(w.head))
	for _, c := range w.chunks {
		if off < int64(len(c)) {
			return c[off:]
		}
		off -= int64(len(c))
	}
	return nil
}

// pngEnd walks the length-prefixed chunks after the signature to the end
// of IEND.
func pngEnd(w *endWalk) int64 {
	const sigLen, chunkOverhead = 8, 12 // length, type, CRC
	if w.pos == 0 {
		w.pos = sigLen
	}
	for {
		h := w.at(w.pos, 8)
		if h == nil {
			return 0
		}
		n := int64(binary.BigEndian.Uint32(h))
		if n > 1<<31-1 { // the PNG limit
			return -1
		}
		w.pos += chunkOverhead + n
		if string(h[4:8]) == "IEND" {
			return w.pos
		}
	}
}

// GIF walker states.
const (
	gifBlock     = iota // pos is at a block's introducer
	gifSubBlocks        // pos is at a data sub-block's length byte
)

// gifEnd walks the blocks after the logical screen descriptor and the
// global colour table to the trailer, skipping data sub-blocks by their
// lengths.
func gifEnd(w *endWalk) int64 {
	const screenEnd, descriptorLen = 13, 10
	if w.pos == 0 {
		h := w.at(0, screenEnd)
		if h == nil {
			return 0
		}
		w.pos = screenEnd + gifColourTable(h[10])
	}
	for {
		b := w.at(w.pos, 1)
		if b == nil {
			return 0
		}
		if w.state == gifSubBlocks {
			w.pos += 1 + int64(b[0])
			if b[0] == 0 {
				w.state = gifBlock
			}
			continue
		}
		switch b[0] {
		case 0x3b: // trailer
			return w.pos + 1
		case 0x21: // extension: introducer, label, sub-blocks
			w.pos += 2
		case 0x2c: // image: descriptor, local colour table, LZW code size, sub-blocks
			d := w.at(w.pos, descriptorLen)
			if d == nil {
				return 0
			}
			w.pos += descriptorLen + gifColourTable(d[9]) + 1
		default:
			return -1
		}
		w.state = gifSubBlocks
	}
}

// gifColourTable is the size of the colour table a GIF packed field
// declares (its top bit says whether there is one).
func gifColourTable(packed byte) int64 {
	if packed&0x80 == 0 {
		return 0
	}
	return 3 << (packed&7 + 1)
}

// webpEnd is the end of the RIFF container, as its size field says.
func webpEnd(w *endWalk) int64 {
	h := w.at(0, 8)
	if h == nil {
		return 0
	}
	size := int64(binary.LittleEndian.Uint32(h[4:]))
	return 8 + size + size&1 // chunks are padded to even sizes
}

// JPEG walker states.
const (
	jpegMarker  = iota // pos is at a marker
	jpegEntropy        // pos is in entropy-coded data
)

// jpegEnd walks the marker segments by their lengths and the entropy-coded
// data after each SOS (where 0xFF00 is a stuffed byte and RSTn a restart,
// not an end) to the end of EOI, through all the scans of a progressive
// file.
func jpegEnd(w *endWalk) int64 {
	const soiLen = 2
	if w.pos == 0 {
		w.pos = soiLen
	}
	for {
		if w.state == jpegEntropy {
			s := w.span(w.pos)
			if s == nil {
				return 0
			}
			i := 0
			for i < len(s) && (s[i] != 0xff || i+1 < len(s) && (s[i+1] == 0 || s[i+1] >= 0xd0 && s[i+1] <= 0xd7)) {
				if s[i] == 0xff {
					i++ // the byte stuffed after it, or the restart
				}
				i++
			}
			w.pos += int64(i)
			if i == len(s) {
				continue // into the next piece
			}
			if i+1 == len(s) { // 0xFF ends the piece: see what follows
				b := w.at(w.pos, 2)
				if b == nil {
					return 0
				}
				if b[1] == 0 || b[1] >= 0xd0 && b[1] <= 0xd7 {
					w.pos += 2
					continue
				}
			}
			w.state = jpegMarker
		}
		m := w.at(w.pos, 2)
		if m == nil {
			return 0
		}
		switch {
		case m[0] != 0xff:
			return -1
		case m[1] == 0xff: // fill byte before a marker
			w.pos++
			continue
		case m[1] == 0xd9: // EOI
			return w.pos + 2
		case m[1] >= 0xd0 && m[1] <= 0xd7 || m[1] == 0x01: // RSTn, TEM: no length
			w.pos += 2
			continue
		case m[1] == 0 || m[1] == 0xd8:
			return -1
		}
		l := w.at(w.pos+2, 2)
		if l == nil {
			return 0
		}
		n := int64(binary.BigEndian.Uint16(l))
		if n < 2 {
			return -1
		}
		w.pos += 2 + n
		if m[1] == 0xda { // SOS: entropy-coded data follows its header
			w.state = jpegEntropy
		}
	}
}

// tgaPixelEnd is the TGA codec's pixelEnd: an uncompressed image ends
// with its last row; a run-length one does not say (-1).
func tgaPixelEnd(data []byte) int64 {
	t, err := parseTGAHeader(data)
	if err != nil {
		return 0
	}
	if t.imageType&8 != 0 {
		return -1
	}
	return int64(t.data) + int64((t.w*t.depth+7)/8)*int64(t.h)
}
