package preprocess

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/hex"
	"image"
	"io"
	"regexp"
)

// exifOrientation returns the EXIF orientation (1..8) stored in the file,
// or 1 when there is none or it cannot be read. It looks where Pillow 9.4's
// getexif does: the first APP1 Exif segment of a JPEG; the eXIf chunk of a
// PNG, else its "Raw profile type exif" text, else tiff:Orientation in its
// XMP; the EXIF chunk of a WebP; IFD0 of a TIFF.
func exifOrientation(c *codec, data []byte) int {
	var o int
	switch c {
	case jpegCodec:
		o = tiffOrientation(jpegExif(data))
	case pngCodec:
		o = pngOrientation(data)
	case webpCodec:
		o = tiffOrientation(riffChunk(data, "EXIF"))
	case tiffCodec:
		o = tiffOrientation(data)
	}
	if o < 1 || o > 8 {
		return 1
	}
	return o
}

// jpegExif returns the payload of the first APP1 Exif segment before the
// first scan.
func jpegExif(b []byte) []byte {
	pos := 2
	for pos+4 <= len(b) {
		if b[pos] != 0xff {
			return nil
		}
		marker := b[pos+1]
		if marker == 0xff { // fill byte
			pos++
			continue
		}
		if marker == 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker == 0x01 {
			pos += 2
			continue
		}
		if marker == 0xda || marker == 0xd9 {
			return nil
		}
		n := int(binary.BigEndian.Uint16(b[pos+2:]))
		if n < 2 || pos+2+n > len(b) {
			return nil
		}
		seg := b[pos+4 : pos+2+n]
		if marker == 0xe1 && bytes.HasPrefix(seg, []byte("Exif\x00")) {
			return seg
		}
		pos += 2 + n
	}
	return nil
}

// pngOrientation finds the orientation in a PNG's eXIf chunk (the last
// one, as Pillow keeps), else in a "Raw profile type exif" text chunk (hex
// after three header lines, as ImageMagick writes), else in its XMP.
func pngOrientation(b []byte) int {
	var exif, raw, xmp []byte
	for pos := 8; pos+12 <= len(b); {
		n := int64(binary.BigEndian.Uint32(b[pos:]))
		if int64(pos)+12+n > int64(len(b)) {
			break
		}
		data := b[pos+8 : pos+8+int(n)]
		switch string(b[pos+4 : pos+8]) {
		case "eXIf":
			exif = append([]byte("Exif\x00\x00"), data...)
		case "tEXt", "zTXt", "iTXt":
			key, text := pngText(string(b[pos+4:pos+8]), data)
			switch key {
			case "Raw profile type exif":
				raw = text
			case "XML:com.adobe.xmp":
				xmp = text
			}
		}
		pos += 12 + int(n)
	}
	if exif == nil && raw != nil {
		if lines := bytes.Split(raw, []byte("\n")); len(lines) > 3 {
			hexText := bytes.Join(lines[3:], nil)
			exif = make([]byte, hex.DecodedLen(len(hexText)))
			if _, err := hex.Decode(exif, hexText); err != nil {
				exif = nil
			}
		}
	}
	if o := tiffOrientation(exif); o != 0 {
		return o
	}
	if m := xmpOrientation.FindSubmatch(xmp); m != nil {
		return int(m[2][0] - '0')
	}
	return 0
}

// xmpOrientation is the pattern Pillow's getexif looks for in XMP.
var xmpOrientation = regexp.MustCompile(`tiff:Orientation(="|>)([0-9])`)

// pngText returns the keyword and text of a tEXt, zTXt or iTXt chunk,
// inflating compressed text (at most 1 MiB of it).
func pngText(typ string, data []byte) (string, []byte) {
	key, rest, ok := bytes.Cut(data, []byte{0})
	if !ok {
		return "", nil
	}
	compressed := typ == "zTXt"
	switch typ {
	case "zTXt":
		if len(rest) < 1 {
			return "", nil
		}
		rest = rest[1:]
	case "iTXt":
		if len(rest) < 2 {
			return "", nil
		}
		compressed = rest[0] == 1
		rest = rest[2:]
		for i := 0; i < 2; i++ { // language tag, translated keyword
			if _, rest, ok = bytes.Cut(rest, []byte{0}); !ok {
				return "", nil
			}
		}
	}
	if compressed {
		z, err := zlib.NewReader(bytes.NewReader(rest))
		if err != nil {
			return "", nil
		}
		if rest, err = io.ReadAll(io.LimitReader(z, 1<<20)); err != nil {
			return "", nil
		}
	}
	return string(key), rest
}

// riffChunk returns the data of the first top-level RIFF chunk of the
// given type.
func riffChunk(b []byte, typ string) []byte {
	pos := 12
	for pos+8 <= len(b) {
		n := int(binary.LittleEndian.Uint32(b[pos+4:]))
		if n < 0 || n > len(b) || pos+8+n > len(b) {
			return nil
		}
		if string(b[pos:pos+4]) == typ {
			return b[pos+8 : pos+8+n]
		}
		pos += 8 + n + n%2
	}
	return nil
}

// tiffOrientation reads tag 0x0112 from IFD0 of TIFF-structured data
// (after an optional "Exif\0\0" header), or returns 0.
func tiffOrientation(b []byte) int {
	b = bytes.TrimPrefix(b, []byte("Exif\x00\x00"))
	if len(b) < 8 {
		return 0
	}
	var order binary.ByteOrder
	switch string(b[:2]) {
	case "II":
		order = binary.LittleEndian
	case "MM":
		order = binary.BigEndian
	default:
		return 0
	}
	ifd := int64(order.Uint32(b[4:]))
	if ifd+2 > int64(len(b)) {
		return 0
	}
	n := int(order.Uint16(b[ifd:]))
	for i := 0; i < n; i++ {
		e := ifd + 2 + int64(i)*12
		if e+12 > int64(len(b)) {
			return 0
		}
		if order.Uint16(b[e:]) != 0x0112 {
			continue
		}
		switch order.Uint16(b[e+2:]) {
		case 3: // SHORT
			return int(order.Uint16(b[e+8:]))
		case 4: // LONG
			return int(order.Uint32(b[e+8:]))
		}
		return 0
	}
	return 0
}

// orient applies an EXIF orientation the way PIL.ImageOps.exif_transpose
// does (2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90
// clockwise, 7 transverse, 8 rotate 90 anticlockwise).
func orient(m *image.NRGBA, o int) *image.NRGBA {
	if o <= 1 || o > 8 {
		return m
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	out := image.NewNRGBA(image.Rect(0, 0, ow, oh))
	for y := 0; y < oh; y++ {
		o4 := out.Pix[y*out.Stride:]
		for x := 0; x < ow; x++ {
			var sx, sy int
			switch o {
			case 2:
				sx, sy = w-1-x, y
			case 3:
				sx, sy = w-1-x, h-1-y
			case 4:
				sx, sy = x, h-1-y
			case 5:
				sx, sy = y, x
			case 6:
				sx, sy = y, h-1-x
			case 7:
				sx, sy = w-1-y, h-1-x
			case 8:
				sx, sy = w-1-y, x
			}
			copy(o4[4*x:4*x+4], m.Pix[m.PixOffset(sx, sy):])
		}
	}
	return out
}
