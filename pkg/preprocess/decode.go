package preprocess

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/png"
	"io"
	"os"
	"unicode/utf8"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// codec is one supported format: its header reader and its decoder, which
// hands the image's RGB rows to a sink.
type codec struct {
	name   string
	config func([]byte) (image.Config, error)
	rows   func([]byte, rowSink) error
	// pixelEnd, when not nil, returns how many bytes of the file the
	// decoder reads at most, as the header in its argument says, or 0
	// while it cannot tell: readAll stops there, so that bytes after the
	// pixels (a 100x100 PGM header before a gigabyte of zeros) are never
	// read or held.
	pixelEnd func([]byte) int64
	// dataEnd, when not nil, walks the bytes read so far to where the
	// image's data ends (see endWalk): readAll stops there and hands the
	// decoder the bytes up to it.
	dataEnd func(*endWalk) int64
}

var (
	jpegCodec = &codec{"JPEG", decodeJPEGConfig, decodeJPEGRows, nil, jpegEnd}
	pngCodec  = &codec{"PNG", fromReader(png.DecodeConfig), decodePNGRows, nil, pngEnd}
	gifCodec  = &codec{"GIF", fromReader(gif.DecodeConfig), decodeGIFRows, nil, gifEnd}
	bmpCodec  = &codec{"BMP", fromReader(bmp.DecodeConfig), decodeBMPRows, bmpPixelEnd, nil}
	tiffCodec = &codec{"TIFF", fromReader(tiff.DecodeConfig), decodeTIFFRows, nil, nil}
	webpCodec = &codec{"WebP", fromReader(webp.DecodeConfig), decodeWebPRows, nil, webpEnd}
	pnmCodec  = &codec{"PPM", fromReader(decodePNMConfig), decodePNMRows, pnmPixelEnd, nil}
	tgaCodec  = &codec{"TGA", fromReader(decodeTGAConfig), decodeTGARows, tgaPixelEnd, nil}
)

// wholeRaster are the codecs decoded into a whole Go raster (goRows),
// whose size checkRaster bounds.
var wholeRaster = map[*codec]bool{bmpCodec: true, tiffCodec: true, webpCodec: true}

// fromReader adapts a DecodeConfig to the bytes read.
func fromReader(config func(io.Reader) (image.Config, error)) func([]byte) (image.Config, error) {
	return func(b []byte) (image.Config, error) { return config(bytes.NewReader(b)) }
}

// sniffLen is how many leading bytes identify the format, or name an
// unsupported one (describe looks at up to 512).
const sniffLen = 512

// maxFileBytes bounds how much of a stream Decode reads, so that an
// endless input (predict - on a pipe, /dev/zero) fails instead of filling
// memory. It is fixed rather than derived from MaxPixels, since file size
// does not follow pixel count; 1 GiB holds even an uncompressed 16-bit
// RGBA TIFF of the default 128 million pixels. Tests lower it.
var maxFileBytes int64 = 1 << 30

// Decode reads an image and returns what Pillow's
// Image.open(f).convert("RGB") gives (alpha 255 everywhere), rotated by its
// EXIF orientation when opts.Orient is set (TIFFs are always rotated, as
// Pillow 9.4 does on open). Data that is not a supported format is refused
// after its first bytes; a stream longer than 1 GiB is refused with
// ErrTooLarge; the header is checked against opts.MaxPixels before the
// pixels are decoded. Errors name the detected format and the problem;
// Read and Load add the file name. The image takes 4 bytes a pixel: Read
// and Load, which resize rows as they are decoded, need far less.
func Decode(r io.Reader, opts Options) (*image.NRGBA, error) {
	in, err := readInput(r, opts)
	if err != nil {
		return nil, err
	}
	s := newImageSink(in.w, in.h)
	if err := in.decode(s); err != nil {
		return nil, err
	}
	return orient(s.m, in.orientation), nil
}

// input is an image read and checked up to its pixels.
type input struct {
	c           *codec
	data        []byte
	w, h        int
	orientation int // EXIF orientation to apply, 1 for none
}

// readChunk is the first size in which readInput reads a stream; it
// doubles up to maxReadChunk.
const (
	readChunk    = 64 << 10
	maxReadChunk = 16 << 20
)

// readInput reads an image file and checks its header; see Decode. It
// reads incrementally: unrecognised data is refused after its first bytes,
// and the header is checked (format, pixel limit) as soon as the bytes
// read hold it, before the rest is read.
func readInput(r io.Reader, opts Options) (*input, error) {
	hint := sizeHint(r)
	br := bufio.NewReaderSize(r, sniffLen)
	head, err := br.Peek(sniffLen)
	if err != nil && err != io.EOF {
		return nil, err
	}
	c, err := sniff(head)
	if err != nil {
		return nil, err
	}
	data, err := readAll(br, hint, c, opts)
	if err != nil {
		return nil, err
	}
	// The ANIM chunk may lie past the sniffed bytes, after a large ICC
	// profile.
	if c == webpCodec && riffChunk(data, "ANIM") != nil {
		return nil, fmt.Errorf("%w: animated WebP files are not supported", ErrUnsupported)
	}
	cfg, err := checkHeader(c, data, opts)
	if err != nil {
		return nil, err
	}
	in := &input{c: c, data: data, w: cfg.Width, h: cfg.Height, orientation: 1}
	switch {
	case c == tgaCodec: // the file's row order, not EXIF
		in.orientation = tgaOrientation(data)
	case opts.Orient || c == tiffCodec: // Pillow 9.4 applies a TIFF's orientation when it loads the file
		in.orientation = exifOrientation(c, data)
	}
	return in, nil
}

// readAll reads the rest of an input whose format c was sniffed, in
// growing steps, checking the header against opts on what has arrived
// until it is complete. With a size hint (a regular file) the bytes are
// read in place; a stream of unknown length is read in chunks joined at
// the end, so it takes at most twice its size while it is assembled.
func readAll(r io.Reader, hint int64, c *codec, opts Options) ([]byte, error) {
	var buf []byte // hint > 0: the data, read in place; +1 sees a file that grew
	if hint > 0 && hint < maxFileBytes {
		buf = make([]byte, 0, hint+1)
	}
	var chunks [][]byte // no hint: the data so far
	var total int64
	headerOK := false
	var bound int64 // where the pixels end, once the header tells; -1: it does not
	var walk endWalk
	var end int64 // where the data ends, once dataEnd has walked there; -1: it cannot
	for size := readChunk; ; size = min(2*size, maxReadChunk) {
		var chunk []byte
		if buf != nil && len(buf) < cap(buf) {
			chunk = buf[len(buf):min(cap(buf), len(buf)+size)]
		} else {
			chunk = make([]byte, size)
		}
		n, err := io.ReadFull(r, chunk)
		if buf != nil && len(buf) < cap(buf) {
			buf = buf[:len(buf)+n]
		} else {
			chunks = append(chunks, chunk[:n])
		}
		total += int64(n)
		if total > maxFileBytes {
			return nil, fmt.Errorf("%w: %s file is longer than the limit of %d bytes", ErrTooLarge, c.name, maxFileBytes)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if !headerOK {
			// Refuse as soon as the header read so far fails for another
			// reason than its end (a TIFF's header may lie anywhere).
			cfg, herr := checkHeader(c, join(buf, chunks), opts)
			cut := errors.Is(herr, io.EOF) || errors.Is(herr, io.ErrUnexpectedEOF) || errors.Is(herr, errJPEGTruncated)
			if herr != nil && !cut && c != tiffCodec {
				return nil, herr
			}
			headerOK = herr == nil
			if headerOK && wholeRaster[c] {
				// Refused from the header, before the pixels arrive.
				if err := checkRaster(c.name, cfg); err != nil {
					return nil, fmt.Errorf("%s header: %w", c.name, err)
				}
			}
		}
		if headerOK && bound == 0 && c.pixelEnd != nil {
			if bound = c.pixelEnd(prefix(buf, chunks, maxHeaderBytes)); bound == 0 && total >= maxHeaderBytes {
				bound = -1 // no header says
			}
		}
		if bound > 0 && total >= bound {
			break // what follows the pixels is never read
		}
		if end == 0 && c.dataEnd != nil {
			walk.head, walk.chunks, walk.total = buf, chunks, total
			end = c.dataEnd(&walk)
		}
		if end > 0 && total >= end {
			return join(buf, chunks)[:end], nil // what follows the image is never read
		}
	}
	return join(buf, chunks), nil
}

// maxHeaderBytes bounds the leading bytes a pixelEnd reads the header
// from (a netpbm header with comments runs to 64 KiB).
const maxHeaderBytes = 1 << 17

// prefix returns the first n bytes of head followed by the chunks.
func prefix(head []byte, chunks [][]byte, n int) []byte {
	out := head[:min(len(head), n)]
	if len(chunks) == 0 {
		return out
	}
	out = append([]byte(nil), out...)
	for _, c := range chunks {
		if len(out) >= n {
			break
		}
		out = append(out, c[:min(len(c), n-len(out))]...)
	}
	return out
}

// join returns head followed by the chunks, in head's memory when there
// are none.
func join(head []byte, chunks [][]byte) []byte {
	if len(chunks) == 0 {
		return head
	}
	if head == nil && len(chunks) == 1 {
		return chunks[0]
	}
	n := len(head)
	for _, c := range chunks {
		n += len(c)
	}
	data := append(make([]byte, 0, n), head...)
	for _, c := range chunks {
		data = append(data, c...)
	}
	return data
}

// sizeHint is the number of bytes left in r when it knows it (a regular
// file, an in-memory reader), else 0.
func sizeHint(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Len() int }:
		return int64(v.Len())
	case *os.File:
		info, err := v.Stat()
		if err != nil || !info.Mode().IsRegular() {
			return 0
		}
		pos, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0
		}
		return info.Size() - pos
	}
	return 0
}

// checkHeader reads the header from data and checks the image size
// against opts.
func checkHeader(c *codec, data []byte, opts Options) (image.Config, error) {
	var cfg image.Config
	if err := protect(c, func() (err error) { cfg, err = c.config(data); return }); err != nil {
		return cfg, fmt.Errorf("%s header: %w", c.name, classify(err))
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return cfg, fmt.Errorf("%s image has no pixels (%dx%d)", c.name, cfg.Width, cfg.Height)
	}
	if n := int64(cfg.Width) * int64(cfg.Height); opts.MaxPixels > 0 && n > opts.MaxPixels {
		return cfg, fmt.Errorf("%w: %s image is %dx%d = %d pixels, more than the limit of %d",
			ErrTooLarge, c.name, cfg.Width, cfg.Height, n, opts.MaxPixels)
	}
	return cfg, nil
}

// decode hands the pixels to sink, turning decoder panics into errors.
func (in *input) decode(sink rowSink) error {
	if err := protect(in.c, func() error { return in.c.rows(in.data, sink) }); err != nil {
		return fmt.Errorf("%s data: %w", in.c.name, classify(err))
	}
	return nil
}

// protect runs a decoder step, turning a panic (as third-party decoders
// may raise on corrupt input) into an error.
func protect(c *codec, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt data (the %s decoder panicked: %v)", c.name, p)
		}
	}()
	return f()
}

// classify rewords the io errors decoders return for files that end early
// and marks the third-party decoders' unsupported-feature errors with
// ErrUnsupported.
func classify(err error) error {
	var pngErr png.UnsupportedError
	var tiffErr tiff.UnsupportedError
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return fmt.Errorf("file is truncated (%w)", err)
	case errors.As(err, &pngErr), errors.As(err, &tiffErr), errors.Is(err, bmp.ErrUnsupported):
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	return err
}

// sniff identifies the format from the leading bytes (at least sniffLen
// of them when the input is that long). Unsupported formats are named when
// recognised.
func sniff(b []byte) (*codec, error) {
	has := func(off int, s string) bool {
		return len(b) >= off+len(s) && string(b[off:off+len(s)]) == s
	}
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("%w: the file is empty", ErrUnsupported)
	case has(0, "\xff\xd8\xff"):
		return jpegCodec, nil
	case has(0, "\x89PNG\r\n\x1a\n"):
		return pngCodec, nil
	case has(0, "GIF87a"), has(0, "GIF89a"):
		return gifCodec, nil
	case has(0, "BM"):
		return bmpCodec, nil
	case has(0, "II*\x00"), has(0, "MM\x00*"):
		return tiffCodec, nil
	case has(0, "RIFF") && has(8, "WEBP"):
		return webpCodec, nil
	case isPNM(b):
		return pnmCodec, nil
	}
	// TGA has no signature: it comes after the formats that have one.
	if name := knownFormat(b); name != "" {
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, name)
	}
	if isTGA(b) && !isText(b) {
		return tgaCodec, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, describe(b))
}

// knownFormat names a format this package recognises but does not read,
// or returns "".
func knownFormat(b []byte) string {
	has := func(off int, s string) bool {
		return len(b) >= off+len(s) && string(b[off:off+len(s)]) == s
	}
	if has(4, "ftyp") && len(b) >= 12 {
		// ISO base media: the brands say which codec is inside.
		end := min(len(b), 64)
		brands := string(b[8:end])
		for _, k := range []struct{ brand, name string }{
			{"avif", "AVIF"}, {"avis", "AVIF"}, {"heic", "HEIC"}, {"heix", "HEIC"},
			{"hevc", "HEIC"}, {"mif1", "HEIF"}, {"msf1", "HEIF"}, {"crx ", "Canon CR3 raw"},
		} {
			if bytes.Contains([]byte(brands), []byte(k.brand)) {
				return k.name + " images are not supported"
			}
		}
		return "ISO media file (ftyp " + fmt.Sprintf("%q", b[8:12]) + ") is not a supported image"
	}
	for _, k := range []struct{ magic, name string }{
		{"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"}, {"\xff\x4f\xff\x51", "JPEG 2000"},
		{"\xff\x0a", "JPEG XL"}, {"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"},
		{"II+\x00", "BigTIFF"}, {"MM\x00+", "BigTIFF"}, {"8BPS", "Photoshop PSD"},
		{"\x00\x00\x01\x00", "Windows ICO"}, {"%PDF", "PDF"}, {"PK\x03\x04", "ZIP archive"},
		{"\x1f\x8b", "gzip archive"}, {"qoif", "QOI"}, {"\x76\x2f\x31\x01", "OpenEXR"},
	} {
		if has(0, k.magic) {
			return k.name + " files are not supported"
		}
	}
	return ""
}

// describe says what unrecognised data looks like, for error messages.
func describe(b []byte) string {
	head := b[:min(len(b), 512)]
	if isText(head) {
		if bytes.Contains(bytes.ToLower(head), []byte("<svg")) {
			return "SVG (vector) images are not supported"
		}
		return "the file is text, not an image"
	}
	return fmt.Sprintf("unrecognised data (starts with % x)", b[:min(len(b), 8)])
}

// isText reports whether b looks like UTF-8 text.
func isText(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			// A rune cut at the end of the sample is still text.
			return len(b) < utf8.UTFMax
		}
		if r < ' ' && r != '\n' && r != '\r' && r != '\t' {
			return false
		}
		b = b[n:]
	}
	return true
}
