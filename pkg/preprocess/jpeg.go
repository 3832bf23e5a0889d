package preprocess

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
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

// jpegMaxJunk bounds the stray bytes the header may have between markers.
const jpegMaxJunk = 1 << 20

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

// bitReader reads entropy-coded data, unstuffing 0xFF00. At a marker or
// the end of the file it supplies zero bits, as libjpeg does, and records
// whether any were used: libjpeg then leaves the rest of the segment zero
// (insufficient), and Pillow reports data cut by the end of the file as
// truncated.
type bitReader struct {
	data   []byte
	pos    int
	acc    uint64 // bits, most significant first
	n      int    // number of valid bits in acc
	marker bool   // stopped at a marker (pos is at its 0xFF)
	fake   int    // zero bytes supplied at a marker or past the end
	stuck  bool   // out of data since before a restart that found no RST marker
}

func (br *bitReader) fill() {
	for br.n <= 56 {
		var b byte
		switch {
		case br.marker:
			br.fake++
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
			br.fake++
			b = 0
		}
		br.acc |= uint64(b) << (56 - br.n)
		br.n += 8
	}
}

// insufficient reports whether supplied zero bits were used.
func (br *bitReader) insufficient() bool { return br.stuck || br.fake*8 > br.n }

// truncated reports whether bits from past the end of the file were used.
func (br *bitReader) truncated() bool { return !br.marker && br.fake*8 > br.n }

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
	index        int       // position in the frame
	bw, bh       int       // block grid, padded to whole MCUs
	coef         [][]int16 // per block row, bw blocks of 64 coefficients, natural order; nil until written
	qt           *[64]int32
	dcPred       int32
	dcTable      int
	acTable      int
	// bits and prevBits are libjpeg's coef_bits for the first
	// smoothedCoefs coefficients (zigzag order): the successive
	// approximation bit last coded, -1 before any scan, now and before the
	// latest scan of this component (see jpeg_smooth.go).
	bits, prevBits [smoothedCoefs]int
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
	scans          int   // scans started
	lastGood       int   // MCU row of the last MCU started before the data ran out, in the latest scan
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
func decodeJPEGConfig(data []byte) (image.Config, error) {
	d := &jpegDecoder{data: data, pos: 2}
	for d.comps == nil {
		// Stray bytes between markers are skipped, as libjpeg does, but
		// not without end: a stream of junk is not an image.
		start := d.pos
		if d.nextMarker(); d.pos-start > jpegMaxJunk {
			return image.Config{}, fmt.Errorf("%w: %d bytes without a marker before the frame header", ErrUnsupported, d.pos-start)
		}
		d.pos = start
		seg, err := d.next()
		if err != nil {
			return image.Config{}, err
		}
		if seg == nil {
			return image.Config{}, errJPEGNoFrame
		}
	}
	return image.Config{Width: d.width, Height: d.height}, nil
}

// decodeJPEGRows decodes a JPEG into sink as Pillow's convert("RGB") sees
// it. A single interleaved sequential scan (baseline files) is decoded
// one MCU row at a time as the rows are needed; other files (progressive,
// one scan per component) keep their coefficients, within decodeBudget.
func decodeJPEGRows(data []byte, sink rowSink) error {
	d := &jpegDecoder{data: data, pos: 2}
	seg, err := d.next()
	for err == nil && seg != nil && d.comps == nil {
		seg, err = d.next()
	}
	if err != nil {
		return err
	}
	if seg == nil {
		if d.comps == nil {
			return errJPEGNoFrame
		}
		return errors.New("no image data before the end marker")
	}
	scans := 1
	s, err := d.startScan(seg, scans)
	if err != nil {
		return err
	}
	if !d.progressive && len(s.comps) == len(d.comps) {
		return d.singlePass(s, sink)
	}
	if n := d.coefBytes(); n > decodeBudget {
		return fmt.Errorf("%w: a %dx%d %s JPEG needs %d MiB for its coefficients, more than the limit of %d MiB",
			ErrTooLarge, d.width, d.height, d.kind(), n>>20, decodeBudget>>20)
	}
	for {
		if err := d.decodeMCUs(s, s.total(), d.storedBlock); err != nil {
			return err
		}
		if seg, err = d.next(); err != nil {
			return err
		}
		if seg == nil { // EOI
			break
		}
		// Every scan walks the whole image, so bound their number.
		if scans++; scans > maxJPEGScans {
			return fmt.Errorf("more than %d scans", maxJPEGScans)
		}
		if s, err = d.startScan(seg, scans); err != nil {
			return err
		}
	}
	for i := range d.comps {
		if d.comps[i].qt == nil {
			return errors.New("a component has no image data")
		}
	}
	if latch, prev := d.smoothing(); latch != nil {
		return d.emit(sink, d.smoothedLoader(latch, prev))
	}
	return d.emit(sink, d.idctStored)
}

// kind names the coding process for messages.
func (d *jpegDecoder) kind() string {
	if d.progressive {
		return "progressive"
	}
	return "multi-scan"
}

// coefBytes is the memory all components' coefficients take.
func (d *jpegDecoder) coefBytes() int64 {
	return d.blocks() * 64 * 2
}

// storedBlock returns block (bx, by) of c's coefficient store, allocating
// its block row when first written.
func (d *jpegDecoder) storedBlock(c *jpegComp, bx, by int) []int16 {
	if c.coef == nil {
		c.coef = make([][]int16, c.bh)
	}
	if c.coef[by] == nil {
		c.coef[by] = make([]int16, c.bw*64)
	}
	return c.coef[by][bx*64:][:64]
}

// singlePass decodes a sequential scan holding every component, one MCU
// row at a time as emit asks for them, then checks that the file ends as
// libjpeg expects (the end marker, no further scan).
func (d *jpegDecoder) singlePass(s *jpegScan, sink rowSink) error {
	rows := make([][]int16, len(d.comps))
	for i := range d.comps {
		rows[i] = make([]int16, d.comps[i].bw*d.comps[i].v*64)
	}
	band := 0
	block := func(c *jpegComp, bx, by int) []int16 {
		i := (by-band*c.v)*c.bw + bx
		return rows[c.index][i*64:][:64]
	}
	load := func(b int, ci int, slot []uint8, stride int) error {
		if ci == 0 {
			band = b
			for i := range rows {
				clear(rows[i])
			}
			per := s.mcusX // MCUs a band
			if len(s.comps) == 1 {
				per *= s.comps[0].v
			}
			if err := d.decodeMCUs(s, min((b+1)*per, s.total()), block); err != nil {
				return err
			}
		}
		c := &d.comps[ci]
		for by := 0; by < c.v; by++ {
			for bx := 0; bx < c.bw; bx++ {
				idctBlock(rows[ci][(by*c.bw+bx)*64:][:64], c.qt, slot[by*8*stride+bx*8:], stride)
			}
		}
		return nil
	}
	if err := d.emit(sink, load); err != nil {
		return err
	}
	if err := d.decodeMCUs(s, s.total(), block); err != nil {
		return err
	}
	seg, err := d.next()
	if err != nil {
		return err
	}
	if seg != nil {
		return errors.New("a second scan in a single-scan JPEG")
	}
	return nil
}

// idctStored fills a band of component ci's samples from its stored
// coefficients (rows never written are zero).
func (d *jpegDecoder) idctStored(b int, ci int, slot []uint8, stride int) error {
	c := &d.comps[ci]
	var zero [64]int16
	for by := 0; by < c.v; by++ {
		var row []int16
		if r := b*c.v + by; c.coef != nil && r < c.bh {
			row = c.coef[r]
		}
		for bx := 0; bx < c.bw; bx++ {
			coef := zero[:]
			if row != nil {
				coef = row[bx*64:][:64]
			}
			idctBlock(coef, c.qt, slot[by*8*stride+bx*8:], stride)
		}
	}
	return nil
}

// next walks marker segments, applying tables and the frame header, up to
// the next scan header, which it returns; nil at the end marker.
func (d *jpegDecoder) next() ([]byte, error) {
	for {
		m := d.nextMarker()
		switch {
		case m == 0: // no EOI: Pillow reports such files as truncated too
			return nil, errJPEGTruncated
		case m == 0xd9: // EOI
			return nil, nil
		case m == 0xd8 || m == 0x01 || (m >= 0xd0 && m <= 0xd7):
			d.pos += 2 // standalone markers
			continue
		}
		seg, err := d.segment()
		if err != nil {
			return nil, err
		}
		switch {
		case m == 0xc0 || m == 0xc1 || m == 0xc2:
			if d.comps != nil {
				return nil, errors.New("more than one frame header")
			}
			err = d.frame(seg, m == 0xc2)
		case m == 0xc3 || (m >= 0xc5 && m <= 0xcf && m != 0xc8 && m != 0xcc):
			return nil, fmt.Errorf("%w: %s JPEGs are not supported", ErrUnsupported, sofName(m))
		case m == 0xc4:
			err = d.huffman(seg)
		case m == 0xdb:
			err = d.quant(seg)
		case m == 0xdd:
			if len(seg) < 2 {
				return nil, errors.New("bad restart interval segment")
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
				return nil, errJPEGNoFrame
			}
			return seg, nil
		}
		if err != nil {
			return nil, err
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
		c.id, c.h, c.v, c.tq, c.index = int(p[0]), int(p[1]>>4), int(p[1]&15), int(p[2]), i
		for k := range c.bits {
			c.bits[k] = -1
		}
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

// jpegScan is a scan being decoded.
type jpegScan struct {
	comps          []*jpegComp
	ss, se, ah, al int
	mcusX, mcusY   int
	br             *bitReader
	mcu            int // next MCU to decode
}

func (s *jpegScan) total() int { return s.mcusX * s.mcusY }

// startScan reads scan header number scans (from 1) and charges its work.
func (d *jpegDecoder) startScan(seg []byte, scans int) (*jpegScan, error) {
	if len(seg) < 1 {
		return nil, errors.New("bad scan header")
	}
	n := int(seg[0])
	if n < 1 || n > 4 || len(seg) < 4+2*n {
		return nil, errors.New("bad scan header")
	}
	s := &jpegScan{comps: make([]*jpegComp, n)}
	for i := 0; i < n; i++ {
		id, tables := int(seg[1+2*i]), seg[2+2*i]
		for j := range d.comps {
			if d.comps[j].id == id {
				s.comps[i] = &d.comps[j]
			}
		}
		c := s.comps[i]
		if c == nil {
			return nil, fmt.Errorf("scan refers to unknown component %d", id)
		}
		c.dcTable, c.acTable = int(tables>>4), int(tables&15)
		if c.dcTable > 3 || c.acTable > 3 {
			return nil, errors.New("bad Huffman table id in scan header")
		}
		if c.qt == nil { // libjpeg latches the table at the first scan
			if d.qt[c.tq] == nil {
				return nil, fmt.Errorf("missing quantization table %d", c.tq)
			}
			q := *d.qt[c.tq]
			c.qt = &q
		}
		c.dcPred = 0
	}
	p := seg[1+2*n:]
	s.ss, s.se, s.ah, s.al = int(p[0]), int(p[1]), int(p[2]>>4), int(p[2]&15)
	if d.progressive {
		if s.ss > s.se || s.se > 63 || s.al > 13 || (s.ss == 0 && s.se != 0) || (s.ss > 0 && n != 1) {
			return nil, errors.New("bad progressive scan parameters")
		}
		d.trackBits(s, scans)
	} else {
		s.ss, s.se, s.ah, s.al = 0, 63, 0, 0
	}
	for _, c := range s.comps {
		if (s.ss == 0 && s.ah == 0 && d.dc[c.dcTable] == nil) || (s.se > 0 && (s.ah == 0 || s.ss > 0) && d.ac[c.acTable] == nil) {
			return nil, errors.New("scan uses an undefined Huffman table")
		}
	}
	d.eobrun = 0
	s.br = &bitReader{data: d.data, pos: d.pos}

	// Non-interleaved scans cover only the blocks inside the component.
	s.mcusX, s.mcusY = d.mcusX, d.mcusY
	if n == 1 {
		c := s.comps[0]
		s.mcusX = ((d.width*c.h+d.hmax-1)/d.hmax + 7) / 8
		s.mcusY = ((d.height*c.v+d.vmax-1)/d.vmax + 7) / 8
	}
	d.scans = scans
	if scans == 1 {
		d.work = jpegWorkPerBlock*d.blocks() + jpegWorkPerByte*int64(len(d.data)-d.pos)
	}
	blocks := int64(s.total())
	if n > 1 {
		blocks = 0
		for _, c := range s.comps {
			blocks += int64(s.total() * c.h * c.v)
		}
	}
	if d.work -= blocks * int64(s.se-s.ss+1); d.work < 0 {
		return nil, fmt.Errorf("the scans need more decoding work than a %d-byte file justifies (empty scans repeated?)", len(d.data))
	}
	return s, nil
}

// decodeMCUs decodes the scan's MCUs up to end, into the blocks that
// block returns (by component and block coordinates), leaving d.pos after
// the scan's data once it is complete. As libjpeg does, MCUs after the
// data ran out at a marker are left as they are, until the next restart.
func (d *jpegDecoder) decodeMCUs(s *jpegScan, end int, block func(c *jpegComp, bx, by int) []int16) error {
	for ; s.mcu < end; s.mcu++ {
		// libjpeg notes the row before a restart may reset the state.
		good := !s.br.insufficient()
		if d.restart > 0 && s.mcu > 0 && s.mcu%d.restart == 0 {
			d.resync(s.br)
			for _, c := range s.comps {
				c.dcPred = 0
			}
			d.eobrun = 0
		}
		mx, my := s.mcu%s.mcusX, s.mcu/s.mcusX
		if good {
			if d.lastGood = my; len(s.comps) == 1 {
				d.lastGood = my / s.comps[0].v
			}
		}
		if s.br.insufficient() {
			if s.br.truncated() {
				return errJPEGTruncated
			}
			continue
		}

		for _, c := range s.comps {
			if len(s.comps) == 1 {
				d.block(s.br, c, block(c, mx, my), s.ss, s.se, s.ah, s.al)
				continue
			}
			for by := 0; by < c.v; by++ {
				for bx := 0; bx < c.h; bx++ {
					d.block(s.br, c, block(c, mx*c.h+bx, my*c.v+by), s.ss, s.se, s.ah, s.al)
				}
			}
		}
		if s.br.truncated() {
			return errJPEGTruncated
		}
	}
	if s.mcu == s.total() {
		d.pos = s.br.pos
	}
	return nil
}

// resync moves past the restart marker expected between intervals.
// When another marker stands there instead, libjpeg leaves it for later
// and, if the data had already run out, keeps the next interval zero.
func (d *jpegDecoder) resync(br *bitReader) {
	stuck := br.insufficient()
	d.pos = br.pos
	rst := false
	if m := d.nextMarker(); m >= 0xd0 && m <= 0xd7 {
		d.pos += 2
		rst = true
	}
	*br = bitReader{data: d.data, pos: d.pos, stuck: stuck && !rst}
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
