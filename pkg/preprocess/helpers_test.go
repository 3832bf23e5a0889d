package preprocess

import (
	"encoding/binary"
	"hash/crc32"
	"image"
	"math"
	"runtime"
)

// runtimeMem snapshots the cumulative heap allocation.
type runtimeMem struct{ total uint64 }

func (m *runtimeMem) read() {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.total = s.TotalAlloc
}

// withPNGSize returns a copy of a PNG whose IHDR declares w x h.
func withPNGSize(data []byte, w, h uint32) []byte {
	b := append([]byte(nil), data...)
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// withJPEGSize returns a copy of a JPEG whose SOF segment declares w x h.
func withJPEGSize(data []byte, w, h uint16) []byte {
	b := append([]byte(nil), data...)
	for pos := 2; pos+9 < len(b); {
		marker := b[pos+1]
		if marker >= 0xc0 && marker <= 0xc2 {
			binary.BigEndian.PutUint16(b[pos+5:], h)
			binary.BigEndian.PutUint16(b[pos+7:], w)
			return b
		}
		pos += 2 + int(binary.BigEndian.Uint16(b[pos+2:]))
	}
	panic("no SOF marker")
}

// resizeRegion resizes img with orientation o as Read does and returns the
// rectangle [x0,x1) x [y0,y1) of the outW x outH result.
func resizeRegion(img *image.NRGBA, outW, outH, x0, y0, x1, y1 int) *rgbImage {
	return resizeOriented(img, 1, outW, outH, x0, y0, x1, y1)
}

func resizeOriented(img *image.NRGBA, o, outW, outH, x0, y0, x1, y1 int) *rgbImage {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	r, err := newResampler(w, h, o, outW, outH, x0, y0, x1, y1, math.MaxInt64)
	if err != nil {
		panic(err)
	}
	for y := 0; y < h; y++ {
		r.row(y, img.Pix[y*img.Stride:][:4*w])
	}
	return r.finish()
}

// cropRGB copies the rectangle [x0,x1) x [y0,y1) of src.
func cropRGB(src *rgbImage, x0, y0, x1, y1 int) *rgbImage {
	out := newRGB(x1-x0, y1-y0)
	for y := y0; y < y1; y++ {
		copy(out.pix[(y-y0)*out.stride:][:out.stride], src.pix[y*src.stride+3*x0:])
	}
	return out
}
