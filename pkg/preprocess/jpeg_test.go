package preprocess

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// jpegBits writes entropy-coded bits, most significant first, with 0xFF
// stuffing; flush pads with ones as encoders do.
type jpegBits struct {
	out  []byte
	acc  uint32
	nacc int
}

func (w *jpegBits) put(v uint32, n int) {
	for i := n - 1; i >= 0; i-- {
		w.acc = w.acc<<1 | (v>>i)&1
		if w.nacc++; w.nacc == 8 {
			w.out = append(w.out, byte(w.acc))
			if byte(w.acc) == 0xff {
				w.out = append(w.out, 0)
			}
			w.acc, w.nacc = 0, 0
		}
	}
}

func (w *jpegBits) flush() []byte {
	if w.nacc > 0 {
		w.put(0xff, 8-w.nacc)
	}
	return w.out
}

// jpegSegment is a marker segment with its length.
func jpegSegment(marker byte, payload []byte) []byte {
	b := []byte{0xff, marker, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(len(payload)+2))
	return append(b, payload...)
}

// emptyRefinementJPEG builds a progressive greyscale JPEG of w x h whose DC
// scan is all zeros, followed by scans AC refinement scans (band 1-63) that
// are nothing but EOB runs: a few bytes each, yet each walks every block.
func emptyRefinementJPEG(w, h, scans int) []byte {
	var b []byte
	b = append(b, 0xff, 0xd8)
	dqt := make([]byte, 65)
	for i := 1; i < 65; i++ {
		dqt[i] = 1
	}
	b = append(b, jpegSegment(0xdb, dqt)...)
	sof := []byte{8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 1, 1, 0x11, 0}
	b = append(b, jpegSegment(0xc2, sof)...)
	// DC table: one 1-bit code for category 0. AC table: 2-bit codes for
	// EOB run r=14 (00) and EOB (01).
	dht := []byte{0x00, 1}
	dht = append(dht, make([]byte, 15)...)
	dht = append(dht, 0)
	b = append(b, jpegSegment(0xc4, dht)...)
	aht := []byte{0x10, 0, 2}
	aht = append(aht, make([]byte, 14)...)
	aht = append(aht, 0xe0, 0x00)
	b = append(b, jpegSegment(0xc4, aht)...)

	blocks := ((w + 7) / 8) * ((h + 7) / 8)
	b = append(b, jpegSegment(0xda, []byte{1, 1, 0x00, 0, 0, 0x01})...)
	var dc jpegBits
	for i := 0; i < blocks; i++ {
		dc.put(0, 1)
	}
	b = append(b, dc.flush()...)
	for s := 0; s < scans; s++ {
		b = append(b, jpegSegment(0xda, []byte{1, 1, 0x00, 1, 63, 0x10})...)
		var ac jpegBits
		for left := blocks; left > 0; {
			run := min(left, 1<<15-1)
			if run >= 1<<14 {
				ac.put(0, 2) // EOBRUN of 2^14 + 14 extra bits
				ac.put(uint32(run-1<<14), 14)
			} else {
				run = 1
				ac.put(1, 2)
			}
			left -= run
		}
		b = append(b, ac.flush()...)
	}
	return append(b, 0xff, 0xd9)
}

// TestProgressiveWorkBound: a small file of empty refinement scans over a
// large image is refused quickly instead of walking the image per scan
// (1000 scans at 2000x2000 took 19 s); a few such scans still decode.
func TestProgressiveWorkBound(t *testing.T) {
	data := emptyRefinementJPEG(2000, 2000, 1000)
	if len(data) > 32<<10 {
		t.Fatalf("test file is %d bytes", len(data))
	}
	start := time.Now()
	_, err := Decode(bytes.NewReader(data), DefaultOptions())
	elapsed := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "decoding work") {
		t.Errorf("want a decoding-work error, got %v", err)
	}
	// The budget allows 16 full passes: 0.2 s measured, bounded at 2 s
	// (times the race detector's slowdown).
	if elapsed > 2*time.Second*raceSlowdown {
		t.Errorf("refusing took %v", elapsed)
	}
	t.Logf("%d bytes, refused in %v: %v", len(data), elapsed, err)

	img, err := Decode(bytes.NewReader(emptyRefinementJPEG(200, 100, 5)), DefaultOptions())
	if err != nil {
		t.Fatalf("5 refinement scans: %v", err)
	}
	if img.Rect.Dx() != 200 || img.Rect.Dy() != 100 || img.Pix[0] != 128 {
		t.Errorf("decoded %v, first pixel %d (want mid grey)", img.Rect, img.Pix[0])
	}
}
