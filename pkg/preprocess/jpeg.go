package preprocess

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
)

// A JPEG decoder written to give the same pixels as Pillow, which decodes
// with libjpeg-turbo's defaults: the accurate integer IDCT ("islow"),
// fancy chroma upsampling and integer YCbCr->RGB. Go's image/jpeg uses a
// different IDCT and colour conversion, off by up to 3 even with the right
// upsampling. Coded per ITU-T T.81: baseline and extended sequential and
// progressive Huffman coding, 8-bit samples, restart intervals. As in
// libjpeg, corrupt entropy data (bad codes, markers inside a scan) decodes
// as zeros instead of failing; data ending inside a scan is an error, as
// Pillow reports truncated files.

// maxJPEGScans bounds the number of scans: progressive JPEGs from encoders
// have about ten (libjpeg-turbo's TurboJPEG API stops at 500).
const maxJPEGScans = 1000

// The decoding work of a JPEG, counted in coefficient visits (a scan costs
// its blocks times its spectral band), is bounded by what its size
// justifies: jpegWorkPerBlock visits for every block of the frame (16 full
// passes; libjpeg-turbo's progressive script needs about 3) plus
// jpegWorkPerByte for every byte from the first scan on. Without it, a few
// bytes per scan make empty refinement scans that each walk the whole
// image (1000 of them at 2000x2000 took 19 s).
const (
	jpegWorkPerBlock = 16 * 64
	jpegWorkPerByte  = 512
)

var (
	errJPEGTruncated = errors.New("file is truncated")
	errJPEGNoFrame   = errors.New("no frame header (SOF) before the image data")
)

// jpegNatural maps zigzag index to natural (row-major) order. The 16
// extra entries catch corrupt run lengths the way libjpeg's table does.
var jpegNatural = [64 + 16]uint8{
	0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
	63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
}

// huffTable is a canonical Huffman decoding table.
type huffTable struct {
	fast    [1 << 9]uint16 // (length<<8 | symbol) for codes of up to 9 bits
	maxCode [17]int32      // largest code of each length, -1 if none
	valPtr  [17]int32      // index in vals of the first code of each length
	minCode [17]int32
	vals    []uint8
}

func newHuffTable(counts []uint8, vals []uint8) (*huffTable, error) {
	errBad := errors.New("bad Huffman table")
	h := &huffTable{vals: vals}
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		h.valPtr[l], h.minCode[l] = k, code
		for i := int32(0); i < n; i++ {
			if code >= 1<<l {
				return nil, errBad
			}
			if l <= 9 {
				shift := 9 - l
				for j := 0; j < 1<<shift; j++ {
					h.fast[int(code)<<shift|j] = uint16(l)<<8 | uint16(vals[k])
				}
			}
			code++
			k++
		}
		// As in libjpeg, codes must fit and the all-ones code is reserved.
		if code >= 1<<l {
			return nil, errBad
		}
		h.maxCode[l] = code - 1
		if n == 0 {
			h.maxCode[l] = -1
		}
		code <<= 1
	}
	return h, nil
}

// bitReader reads entropy-coded data, unstuffing 0xFF00. At a marker it
// supplies zero bits, as libjpeg does; past the end of the file too, but
// then records that the data was cut.
type bitReader struct {
	data   []byte
	pos    int
	acc    uint64 // bits, most significant first
	n      int    // number of valid bits in acc
	marker bool   // stopped at a marker (pos is at its 0xFF)
	fake   int    // zero bytes supplied past the end of the data
}

func (br *bitReader) fill() {
	for br.n <= 56 {
		var b byte
		switch {
		case br.marker:
		case br.pos >= len(br.data):
			br.fake++
		default:
			b = br.data[br.pos]
			if b != 0xff {
				br.pos++
				break
			}
			next := br.pos + 1
			for next < len(br.data) && br.data[next] == 0xff {
				next++ // fill bytes
			}
			if next >= len(br.data) {
				br.pos = len(br.data)
				b = 0
				br.fake++
				break
			}
			if br.data[next] == 0 {
				br.pos = next + 1
				break
			}
			br.pos = next - 1
			br.marker = true
			b = 0
		}
		br.acc |= uint64(b) << (56 - br.n)
		br.n += 8
	}
}

// truncated reports whether bits from past the end of the data were used.
func (br *bitReader) truncated() bool { return br.fake*8 > br.n }

func (br *bitReader) bits(n int) int32 {
	if n == 0 {
		return 0
	}
	if br.n < n {
		br.fill()
	}
	v := int32(br.acc >> (64 - n))
	br.acc <<= n
	br.n -= n
	return v
}

func (br *bitReader) bit() bool { return br.bits(1) != 0 }

// decode reads one Huffman symbol; a bad code yields 0 (libjpeg's choice).
func (br *bitReader) decode(h *huffTable) uint8 {
	if br.n < 16 {
		br.fill()
	}
	if e := h.fast[br.acc>>(64-9)]; e != 0 {
		l := int(e >> 8)
		br.acc <<= l
		br.n -= l
		return uint8(e)
	}
	code := int32(0)
	for l := 1; l <= 16; l++ {
		code = code<<1 | int32(br.acc>>63)
		br.acc <<= 1
		br.n--
		if code <= h.maxCode[l] {
			return h.vals[h.valPtr[l]+code-h.minCode[l]]
		}
	}
	return 0
}

// extend turns the t-bit magnitude category value v into its signed value.
func extend(v int32, t int) int32 {
	if t > 0 && v < 1<<(t-1) {
		return v + (-1 << t) + 1
	}
	return v
}

// jpegComp is one component of the frame.
type jpegComp struct {
	id, h, v, tq int
	bw, bh       int     // block grid, padded to whole MCUs
	coef         []int16 // bw*bh blocks of 64 coefficients, natural order
	qt           *[64]int32
	dcPred       int32
	dcTable      int
	acTable      int
}

type jpegDecoder struct {
	data           []byte
	pos            int
	width, height  int
	progressive    bool
	comps          []jpegComp
	hmax, vmax     int
	mcusX, mcusY   int
	qt             [4]*[64]int32 // natural order
	dc, ac         [4]*huffTable
	restart        int
	jfif, adobe    bool
	adobeTransform int
	eobrun         int32
	work           int64 // coefficient visits left (see jpegWorkPerBlock), set at the first scan
}

// segment returns the payload of the marker segment at d.pos.
func (d *jpegDecoder) segment() ([]byte, error) {
	if d.pos+4 > len(d.data) {
		return nil, errJPEGTruncated
	}
	n := int(binary.BigEndian.Uint16(d.data[d.pos+2:]))
	if n < 2 {
		return nil, fmt.Errorf("bad marker segment length %d", n)
	}
	if d.pos+2+n > len(d.data) {
		return nil, errJPEGTruncated
	}
	seg := d.data[d.pos+4 : d.pos+2+n]
	d.pos += 2 + n
	return seg, nil
}

// nextMarker skips to the next marker, past any stray bytes, and returns
// its code with d.pos at its 0xFF; 0 at the end of the data.
func (d *jpegDecoder) nextMarker() byte {
	for ; d.pos+1 < len(d.data); d.pos++ {
		if d.data[d.pos] == 0xff && d.data[d.pos+1] != 0 && d.data[d.pos+1] != 0xff {
			return d.data[d.pos+1]
		}
	}
	d.pos = len(d.data)
	return 0
}

// decodeJPEGConfig reads the frame header only.
func decodeJPEGConfig(r io.Reader) (image.Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return image.Config{}, err
	}
	d := &jpegDecoder{data: data, pos: 2}
	if err := d.parse(true); err != nil {
		return image.Config{}, err
	}
	return image.Config{Width: d.width, Height: d.height}, nil
}

// decodeJPEG decodes a JPEG to RGB as Pillow does.
func decodeJPEG(data []byte) (*image.NRGBA, error) {
	d := &jpegDecoder{data: data, pos: 2}
	if err := d.parse(false); err != nil {
		return nil, err
	}
	return d.toRGB()
}

// parse walks the markers, decoding every scan; with headerOnly it stops
// after the frame header.
func (d *jpegDecoder) parse(headerOnly bool) error {
	scans := 0
	for {
		m := d.nextMarker()
		switch {
		case m == 0: // no EOI: Pillow reports such files as truncated too
			return errJPEGTruncated
		case m == 0xd9: // EOI
			if scans == 0 {
				return errors.New("no image data before the end marker")
			}
			return nil
		case m == 0xd8 || m == 0x01 || (m >= 0xd0 && m <= 0xd7):
			d.pos += 2 // standalone markers
			continue
		}
		seg, err := d.segment()
		if err != nil {
			return err
		}
		switch {
		case m == 0xc0 || m == 0xc1 || m == 0xc2:
			if d.comps != nil {
				return errors.New("more than one frame header")
			}
			if err := d.frame(seg, m == 0xc2); err != nil {
				return err
			}
			if headerOnly {
				return nil
			}
		case m == 0xc3 || (m >= 0xc5 && m <= 0xcf && m != 0xc8 && m != 0xcc):
			return fmt.Errorf("%w: %s JPEGs are not supported", ErrUnsupported, sofName(m))
		case m == 0xc4:
			err = d.huffman(seg)
		case m == 0xdb:
			err = d.quant(seg)
		case m == 0xdd:
			if len(seg) < 2 {
				return errors.New("bad restart interval segment")
			}
			d.restart = int(binary.BigEndian.Uint16(seg))
		case m == 0xe0:
			d.jfif = d.jfif || (len(seg) >= 14 && string(seg[:5]) == "JFIF\x00")
		case m == 0xee:
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				d.adobe, d.adobeTransform = true, int(seg[11])
			}
		case m == 0xda:
			if d.comps == nil {
				return errJPEGNoFrame
			}
			// Every scan walks the whole image, so bound their number.
			if scans++; scans > maxJPEGScans {
				return fmt.Errorf("more than %d scans", maxJPEGScans)
			}
			if scans == 1 {
				d.work = jpegWorkPerBlock*d.blocks() + jpegWorkPerByte*int64(len(d.data)-d.pos)
			}
			if err := d.scan(seg); err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
	}
}

func sofName(m byte) string {
	switch m {
	case 0xc3, 0xc7, 0xcb, 0xcf:
		return "lossless"
	case 0xc5, 0xc6, 0xcd, 0xce:
		return "hierarchical"
	}
	return "arithmetic-coded"
}

// frame reads a SOF segment.
func (d *jpegDecoder) frame(seg []byte, progressive bool) error {
	if len(seg) < 6 {
		return errors.New("bad frame header")
	}
	if seg[0] != 8 {
		return fmt.Errorf("%w: %d-bit JPEGs are not supported", ErrUnsupported, seg[0])
	}
	d.height = int(binary.BigEndian.Uint16(seg[1:]))
	d.width = int(binary.BigEndian.Uint16(seg[3:]))
	n := int(seg[5])
	if d.width == 0 || d.height == 0 {
		return fmt.Errorf("bad image size %dx%d", d.width, d.height)
	}
	if n != 1 && n != 3 && n != 4 {
		return fmt.Errorf("%w: JPEGs with %d components are not supported", ErrUnsupported, n)
	}
	if len(seg) < 6+3*n {
		return errors.New("bad frame header")
	}
	d.progressive = progressive
	d.comps = make([]jpegComp, n)
	d.hmax, d.vmax = 1, 1
	for i := range d.comps {
		c := &d.comps[i]
		p := seg[6+3*i:]
		c.id, c.h, c.v, c.tq = int(p[0]), int(p[1]>>4), int(p[1]&15), int(p[2])
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.tq > 3 {
			return errors.New("bad component sampling or table in frame header")
		}
		d.hmax, d.vmax = max(d.hmax, c.h), max(d.vmax, c.v)
	}
	d.mcusX = (d.width + 8*d.hmax - 1) / (8 * d.hmax)
	d.mcusY = (d.height + 8*d.vmax - 1) / (8 * d.vmax)
	for i := range d.comps {
		c := &d.comps[i]
		if d.hmax%c.h != 0 || d.vmax%c.v != 0 {
			return fmt.Errorf("%w: fractional chroma sampling factors", ErrUnsupported)
		}
		c.bw, c.bh = d.mcusX*c.h, d.mcusY*c.v
	}
	return nil
}

// blocks is the number of blocks of all components of the frame.
func (d *jpegDecoder) blocks() int64 {
	var n int64
	for _, c := range d.comps {
		n += int64(c.bw) * int64(c.bh)
	}
	return n
}

// allocate gives every component its coefficient storage, once.
func (d *jpegDecoder) allocate() {
	for i := range d.comps {
		c := &d.comps[i]
		if c.coef == nil {
			c.coef = make([]int16, c.bw*c.bh*64)
		}
	}
}

func (d *jpegDecoder) huffman(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return errors.New("bad Huffman table segment")
		}
		class, id := seg[0]>>4, seg[0]&15
		if class > 1 || id > 3 {
			return errors.New("bad Huffman table id")
		}
		total := 0
		for _, c := range seg[1:17] {
			total += int(c)
		}
		if total > 256 || len(seg) < 17+total {
			return errors.New("bad Huffman table segment")
		}
		h, err := newHuffTable(seg[1:17], append([]uint8(nil), seg[17:17+total]...))
		if err != nil {
			return err
		}
		for _, v := range h.vals {
			if class == 0 && v > 15 { // DC categories; libjpeg rejects larger ones
				return errors.New("bad DC Huffman table")
			}
		}
		if class == 0 {
			d.dc[id] = h
		} else {
			d.ac[id] = h
		}
		seg = seg[17+total:]
	}
	return nil
}

func (d *jpegDecoder) quant(seg []byte) error {
	for len(seg) > 0 {
		prec, id := seg[0]>>4, seg[0]&15
		size := 64 << prec
		if prec > 1 || id > 3 || len(seg) < 1+size {
			return errors.New("bad quantization table")
		}
		q := new([64]int32)
		for k := 0; k < 64; k++ {
			if prec == 0 {
				q[jpegNatural[k]] = int32(seg[1+k])
			} else {
				q[jpegNatural[k]] = int32(binary.BigEndian.Uint16(seg[1+2*k:]))
			}
		}
		d.qt[id] = q
		seg = seg[1+size:]
	}
	return nil
}

// scan decodes one scan's entropy-coded data, leaving d.pos after it.
func (d *jpegDecoder) scan(seg []byte) error {
	if len(seg) < 1 {
		return errors.New("bad scan header")
	}
	n := int(seg[0])
	if n < 1 || n > 4 || len(seg) < 4+2*n {
		return errors.New("bad scan header")
	}
	comps := make([]*jpegComp, n)
	for i := 0; i < n; i++ {
		id, tables := int(seg[1+2*i]), seg[2+2*i]
		for j := range d.comps {
			if d.comps[j].id == id {
				comps[i] = &d.comps[j]
			}
		}
		c := comps[i]
		if c == nil {
			return fmt.Errorf("scan refers to unknown component %d", id)
		}
		c.dcTable, c.acTable = int(tables>>4), int(tables&15)
		if c.dcTable > 3 || c.acTable > 3 {
			return errors.New("bad Huffman table id in scan header")
		}
		if c.qt == nil { // libjpeg latches the table at the first scan
			if d.qt[c.tq] == nil {
				return fmt.Errorf("missing quantization table %d", c.tq)
			}
			q := *d.qt[c.tq]
			c.qt = &q
		}
		c.dcPred = 0
	}
	p := seg[1+2*n:]
	ss, se, ah, al := int(p[0]), int(p[1]), int(p[2]>>4), int(p[2]&15)
	if d.progressive {
		if ss > se || se > 63 || al > 13 || (ss == 0 && se != 0) || (ss > 0 && n != 1) {
			return errors.New("bad progressive scan parameters")
		}
	} else {
		ss, se, ah, al = 0, 63, 0, 0
	}
	for _, c := range comps {
		if (ss == 0 && ah == 0 && d.dc[c.dcTable] == nil) || (se > 0 && (ah == 0 || ss > 0) && d.ac[c.acTable] == nil) {
			return errors.New("scan uses an undefined Huffman table")
		}
	}
	d.allocate()
	d.eobrun = 0
	br := &bitReader{data: d.data, pos: d.pos}

	// Non-interleaved scans cover only the blocks inside the component.
	mcusX, mcusY := d.mcusX, d.mcusY
	if n == 1 {
		c := comps[0]
		mcusX = ((d.width*c.h+d.hmax-1)/d.hmax + 7) / 8
		mcusY = ((d.height*c.v+d.vmax-1)/d.vmax + 7) / 8
	}
	total := mcusX * mcusY
	blocks := int64(total)
	if n > 1 {
		blocks = 0
		for _, c := range comps {
			blocks += int64(total * c.h * c.v)
		}
	}
	if d.work -= blocks * int64(se-ss+1); d.work < 0 {
		return fmt.Errorf("the scans need more decoding work than a %d-byte file justifies (empty scans repeated?)", len(d.data))
	}
	for mcu := 0; mcu < total; mcu++ {
		if d.restart > 0 && mcu > 0 && mcu%d.restart == 0 {
			d.resync(br)
			for _, c := range comps {
				c.dcPred = 0
			}
			d.eobrun = 0
		}
		mx, my := mcu%mcusX, mcu/mcusX
		for _, c := range comps {
			if n == 1 {
				d.block(br, c, c.coef[(my*c.bw+mx)*64:][:64], ss, se, ah, al)
				continue
			}
			for by := 0; by < c.v; by++ {
				for bx := 0; bx < c.h; bx++ {
					i := (my*c.v+by)*c.bw + mx*c.h + bx
					d.block(br, c, c.coef[i*64:][:64], ss, se, ah, al)
				}
			}
		}
		if br.truncated() {
			return errJPEGTruncated
		}
	}
	d.pos = br.pos
	return nil
}

// resync moves past the restart marker expected between intervals.
func (d *jpegDecoder) resync(br *bitReader) {
	d.pos = br.pos
	if m := d.nextMarker(); m >= 0xd0 && m <= 0xd7 {
		d.pos += 2
	}
	*br = bitReader{data: d.data, pos: d.pos}
}

// block decodes one block's share of the current scan.
func (d *jpegDecoder) block(br *bitReader, c *jpegComp, b []int16, ss, se, ah, al int) {
	if !d.progressive {
		t := int(br.decode(d.dc[c.dcTable]))
		c.dcPred += extend(br.bits(t), t)
		b[0] = int16(c.dcPred)
		ac := d.ac[c.acTable]
		for k := 1; k < 64; k++ {
			s := br.decode(ac)
			r, t := int(s>>4), int(s&15)
			if t == 0 {
				if r != 15 {
					break
				}
				k += 15
				continue
			}
			k += r
			b[jpegNatural[k]] = int16(extend(br.bits(t), t))
		}
		return
	}
	switch {
	case ss == 0 && ah == 0: // DC first
		t := int(br.decode(d.dc[c.dcTable]))
		c.dcPred += extend(br.bits(t), t)
		b[0] = int16(c.dcPred << al)
	case ss == 0: // DC refinement
		if br.bit() {
			b[0] |= 1 << al
		}
	case ah == 0: // AC first
		d.acFirst(br, d.ac[c.acTable], b, ss, se, al)
	default:
		d.acRefine(br, d.ac[c.acTable], b, ss, se, al)
	}
}

func (d *jpegDecoder) acFirst(br *bitReader, h *huffTable, b []int16, ss, se, al int) {
	if d.eobrun > 0 {
		d.eobrun--
		return
	}
	for k := ss; k <= se; k++ {
		s := br.decode(h)
		r, t := int(s>>4), int(s&15)
		if t == 0 {
			if r == 15 {
				k += 15
				continue
			}
			d.eobrun = 1 << r
			if r > 0 {
				d.eobrun += br.bits(r)
			}
			d.eobrun--
			return
		}
		k += r
		b[jpegNatural[k]] = int16(extend(br.bits(t), t) << al)
	}
}

// acRefine is the successive-approximation refinement of AC coefficients
// (T.81 G.1.2.3), following libjpeg's handling of the band.
func (d *jpegDecoder) acRefine(br *bitReader, h *huffTable, b []int16, ss, se, al int) {
	p1, m1 := int16(1)<<al, int16(-1)<<al
	refine := func(i uint8) {
		if br.bit() && b[i]&p1 == 0 {
			if b[i] >= 0 {
				b[i] += p1
			} else {
				b[i] += m1
			}
		}
	}
	k := ss
	if d.eobrun == 0 {
		for ; k <= se; k++ {
			s := br.decode(h)
			r, t := int(s>>4), int(s&15)
			var v int16
			if t != 0 {
				v = m1
				if br.bit() {
					v = p1
				}
			} else if r != 15 {
				d.eobrun = 1 << r
				if r > 0 {
					d.eobrun += br.bits(r)
				}
				break
			}
			for ; k <= se; k++ {
				i := jpegNatural[k]
				if b[i] != 0 {
					refine(i)
				} else {
					if r == 0 {
						break
					}
					r--
				}
			}
			if v != 0 {
				b[jpegNatural[k]] = v
			}
		}
	}
	if d.eobrun > 0 {
		for ; k <= se; k++ {
			if i := jpegNatural[k]; b[i] != 0 {
				refine(i)
			}
		}
		d.eobrun--
	}
}
