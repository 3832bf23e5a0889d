package preprocess

import (
	"errors"
	"fmt"
	"image"
	"io"
	"math"
)

// Netpbm images (PBM, PGM, PPM: P1 to P6) as Pillow 9.4's PpmImagePlugin
// reads them: binary and plain (text) forms, maxval 1 to 65535. Samples
// are scaled to Pillow's mode as round(v/maxval*out) with out 255, or
// 65535 for grey above maxval 255 (Pillow's mode I, which convert("RGB")
// then clips to 255); maxval 255, and 65535 for grey, are stored as read.
// The decoder streams rows and refuses data shorter than the header
// declares before allocating anything.

// pnmHeader is a parsed netpbm header.
type pnmHeader struct {
	magic  byte // '1' to '6'
	w, h   int
	maxval int // 1 for bitmaps
	data   int // offset of the first sample
}

// pnmMaxToken is Pillow's limit on a header token's length.
const pnmMaxToken = 10

var errPNMHeader = errors.New("malformed netpbm header")

// isPNM reports whether b starts like a netpbm file Pillow opens.
func isPNM(b []byte) bool {
	return len(b) >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6' && pnmSpace(b[2])
}

func pnmSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// parsePNMHeader reads the magic number, the size and maxval, skipping
// whitespace and comments (# to the end of the line) as Pillow does.
func parsePNMHeader(b []byte) (*pnmHeader, error) {
	if !isPNM(b) {
		return nil, errPNMHeader
	}
	p := &pnmHeader{magic: b[1], maxval: 1}
	pos := 3
	token := func() (int, error) {
		var tok []byte
		for {
			if pos >= len(b) {
				if len(tok) == 0 {
					return 0, fmt.Errorf("%w: it ends inside the header (%w)", errPNMHeader, io.ErrUnexpectedEOF)
				}
				break
			}
			c := b[pos]
			pos++
			if pnmSpace(c) {
				if len(tok) == 0 {
					continue
				}
				break
			}
			if c == '#' {
				for pos < len(b) && b[pos] != '\r' && b[pos] != '\n' {
					pos++
				}
				pos++
				continue
			}
			if tok = append(tok, c); len(tok) > pnmMaxToken {
				return 0, fmt.Errorf("%w: token too long", errPNMHeader)
			}
		}
		v := 0
		for _, c := range tok {
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("%w: %q is not a number", errPNMHeader, tok)
			}
			v = 10*v + int(c-'0')
		}
		return v, nil
	}
	var err error
	if p.w, err = token(); err != nil {
		return nil, err
	}
	if p.h, err = token(); err != nil {
		return nil, err
	}
	if p.magic != '1' && p.magic != '4' {
		if p.maxval, err = token(); err != nil {
			return nil, err
		}
		if p.maxval < 1 || p.maxval > 65535 {
			return nil, fmt.Errorf("%w: maxval %d is outside 1 to 65535", errPNMHeader, p.maxval)
		}
	}
	p.data = min(pos, len(b))
	return p, nil
}

// decodePNMConfig reads a netpbm header.
func decodePNMConfig(r io.Reader) (image.Config, error) {
	// The header is a few tokens; comments can make it longer.
	head, err := io.ReadAll(io.LimitReader(r, 1<<16))
	if err != nil {
		return image.Config{}, err
	}
	p, err := parsePNMHeader(head)
	if err != nil {
		return image.Config{}, err
	}
	return image.Config{Width: p.w, Height: p.h}, nil
}

// pnmPixelEnd is the codec's pixelEnd: the binary forms (P4 to P6) end
// with the last row; the plain ones, whose samples may be spaced at will,
// do not say (-1).
func pnmPixelEnd(data []byte) int64 {
	p, err := parsePNMHeader(data)
	// The header is complete once whitespace follows its last number.
	if err != nil || p.data == 0 || !pnmSpace(data[p.data-1]) {
		return 0
	}
	size := int64(1)
	if p.maxval > 255 {
		size = 2
	}
	switch p.magic {
	case '4':
		return int64(p.data) + int64((p.w+7)/8)*int64(p.h)
	case '5', '6':
		return int64(p.data) + int64(p.w)*int64(p.channels())*size*int64(p.h)
	}
	return -1
}

// channels is the number of samples a pixel.
func (p *pnmHeader) channels() int {
	if p.magic == '3' || p.magic == '6' {
		return 3
	}
	return 1
}

// scale maps samples to bytes as Pillow's decoders and convert("RGB") do.
func (p *pnmHeader) scale() func(v int) uint8 {
	grey16 := p.channels() == 1 && p.maxval > 255
	plain := p.magic <= '3'
	switch {
	case p.maxval == 255 && !plain, p.maxval == 65535 && grey16 && !plain:
		return func(v int) uint8 { return uint8(min(v, 255)) } // raw: as stored (16-bit grey clipped)
	case grey16:
		return func(v int) uint8 {
			return uint8(min(math.RoundToEven(float64(v)/float64(p.maxval)*65535), 65535, 255))
		}
	}
	return func(v int) uint8 {
		return uint8(min(math.RoundToEven(float64(v)/float64(p.maxval)*255), 255))
	}
}

// decodePNMRows decodes a netpbm image into sink.
func decodePNMRows(data []byte, sink rowSink) error {
	p, err := parsePNMHeader(data)
	if err != nil {
		return err
	}
	body := data[p.data:]
	o := make([]uint8, 4*p.w)
	switch p.magic {
	case '4': // packed bits, 1 is black, rows padded to bytes
		stride := (p.w + 7) / 8
		if int64(stride)*int64(p.h) > int64(len(body)) {
			return errTruncated(int64(stride)*int64(p.h), len(body))
		}
		for y := 0; y < p.h; y++ {
			row := body[y*stride:]
			for x := 0; x < p.w; x++ {
				v := 255 - 255*(row[x/8]>>(7-x%8)&1)
				o[4*x], o[4*x+1], o[4*x+2] = v, v, v
			}
			sink.row(y, o)
		}
		return nil
	case '5', '6':
		size := 1
		if p.maxval > 255 {
			size = 2
		}
		n := p.channels()
		stride := int64(p.w) * int64(n*size)
		if stride*int64(p.h) > int64(len(body)) {
			return errTruncated(stride*int64(p.h), len(body))
		}
		scale := p.scale()
		for y := 0; y < p.h; y++ {
			row := body[int64(y)*stride:]
			for x := 0; x < p.w; x++ {
				for c := 0; c < 3; c++ {
					i := (x*n + min(c, n-1)) * size
					v := int(row[i])
					if size == 2 {
						v = v<<8 | int(row[i+1])
					}
					o[4*x+c] = scale(v)
				}
			}
			sink.row(y, o)
		}
		return nil
	}
	return decodePlainPNM(p, body, o, sink)
}

// errTruncated is the error for pixel data shorter than the header says.
func errTruncated(need int64, have int) error {
	return fmt.Errorf("file is truncated (the pixels need %d bytes, the file has %d)", need, have)
}

// decodePlainPNM decodes the text forms: P1 digits 0 and 1 (1 is black,
// no separator needed), P2 and P3 decimal samples; comments run from # to
// the end of the line.
func decodePlainPNM(p *pnmHeader, body []byte, o []uint8, sink rowSink) error {
	n := p.channels()
	// Each sample takes at least a byte (and P2/P3 a separator): refuse
	// what cannot hold the image before going through it.
	minBytes := int64(p.w) * int64(p.h) * int64(n)
	if p.magic != '1' {
		minBytes = 2*minBytes - 1
	}
	if minBytes > int64(len(body)) {
		return errTruncated(minBytes, len(body))
	}
	pos := 0
	skip := func() {
		for pos < len(body) {
			switch c := body[pos]; {
			case pnmSpace(c):
				pos++
			case c == '#':
				for pos < len(body) && body[pos] != '\r' && body[pos] != '\n' {
					pos++
				}
			default:
				return
			}
		}
	}
	next := func() (int, error) {
		skip()
		if pos >= len(body) {
			return 0, errors.New("not enough image data")
		}
		if p.magic == '1' {
			c := body[pos]
			pos++
			if c != '0' && c != '1' {
				return 0, fmt.Errorf("invalid token %q in a plain PBM", c)
			}
			return int(c - '0'), nil
		}
		// Pillow removes comments with their line end before splitting,
		// so a comment inside a number joins its two halves.
		digits, v := 0, 0
		for ; pos < len(body) && !pnmSpace(body[pos]); pos++ {
			c := body[pos]
			if c == '#' {
				for pos < len(body) && body[pos] != '\r' && body[pos] != '\n' {
					pos++
				}
				continue
			}
			if digits++; c < '0' || c > '9' || digits > pnmMaxToken {
				return 0, fmt.Errorf("invalid sample in a plain netpbm file at byte %d", pos)
			}
			v = 10*v + int(c-'0')
		}
		if v > p.maxval {
			return 0, fmt.Errorf("sample %d is larger than maxval %d", v, p.maxval)
		}
		return v, nil
	}
	scale := p.scale()
	for y := 0; y < p.h; y++ {
		for x := 0; x < p.w; x++ {
			for c := 0; c < n; c++ {
				v, err := next()
				if err != nil {
					return err
				}
				if p.magic == '1' {
					o[4*x] = uint8(255 - 255*v)
				} else {
					o[4*x+c] = scale(v)
				}
			}
			if n == 1 {
				o[4*x+1], o[4*x+2] = o[4*x], o[4*x]
			}
		}
		sink.row(y, o)
	}
	return nil
}
