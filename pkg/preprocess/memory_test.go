package preprocess

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// zeroPNG is a PNG of w x h all-zero pixels (colour type ct, bit depth
// depth), compressed as tightly as zeros go: 1.2 MB for 1 GB of rows.
func zeroPNG(t testing.TB, w, h, ct, depth int) []byte {
	channels := map[int]int{0: 1, 2: 3, 4: 2, 6: 4}[ct]
	rowBytes := (w*channels*depth+7)/8 + 1
	var z bytes.Buffer
	zw, err := zlib.NewWriterLevel(&z, zlib.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for left := int64(rowBytes) * int64(h); left > 0; left -= int64(len(zeros)) {
		if _, err := zw.Write(zeros[:min(left, int64(len(zeros)))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	chunk := func(typ string, body []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
		b = append(append(b, typ...), body...)
		return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[4:]))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, byte(depth), byte(ct), 0, 0, 0)
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, chunk("IHDR", ihdr)...)
	out = append(out, chunk("IDAT", z.Bytes())...)
	return append(out, chunk("IEND", nil)...)
}

// TestPNGStreamsRows: a PNG is decoded one row at a time, so a small file
// of a large image allocates a few rows, not the raster, and gives the
// tensor of its (black) pixels.
func TestPNGStreamsRows(t *testing.T) {
	black := normTable(HolocronTransform())
	for _, tc := range []struct {
		name          string
		w, h, ct, bit int
	}{
		{"grey8", 8000, 8000, 0, 8},
		{"rgba16", 3000, 3000, 6, 16},
		{"grey1", 9000, 9000, 0, 1},
	} {
		if raceSlowdown > 1 { // a quarter of the pixels, for time
			tc.w, tc.h = tc.w/2, tc.h/2
		}
		data := zeroPNG(t, tc.w, tc.h, tc.ct, tc.bit)
		var err error
		var got []float32
		alloc := allocDuring(func() {
			tensor, e := Read(bytes.NewReader(data), tc.name+".png", DefaultOptions())
			if err = e; e == nil {
				got = tensor.Data
			}
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for i, v := range got {
			if want := black[i/(224*224)][0]; v != want {
				t.Fatalf("%s: element %d is %v, want %v", tc.name, i, v, want)
			}
		}
		if alloc > 32<<20 {
			t.Errorf("%s %dx%d (%d-byte file): allocated %d MiB", tc.name, tc.w, tc.h, len(data), alloc>>20)
		}
		t.Logf("%s %dx%d, %d bytes: allocated %.1f MiB", tc.name, tc.w, tc.h, len(data), float64(alloc)/(1<<20))
	}
}

// rssHelperEnv names the file TestPeakRSSHelper decodes in a child process.
const rssHelperEnv = "RES2NET_PREPROCESS_RSS_FILE"

// TestPeakRSSHelper is the child process of TestPeakRSS.
func TestPeakRSSHelper(t *testing.T) {
	path := os.Getenv(rssHelperEnv)
	if path == "" {
		t.Skip("child process of TestPeakRSS")
	}
	if _, err := Load(path, DefaultOptions()); err != nil {
		fmt.Println("error:", err)
	}
}

// TestPeakRSS decodes the small files declaring large images, each
// in a child process, and bounds the child's peak resident memory (issue
// figures before: 2.0 GB, 1.6 GB, 740 MB, 620 MB), and one that keeps as
// much as the decoding budget allows.
func TestPeakRSS(t *testing.T) {
	if testing.Short() || raceSlowdown > 1 {
		t.Skip("decodes three 121-Mpx images (and the race detector's memory is no measure)")
	}
	cmyk, err := os.ReadFile("testdata/formats/cmyk_no_data.jpg")
	if err != nil {
		t.Fatal(err)
	}
	const limit = 400 << 20
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
		want string // "" for a successful decode
	}{
		{"cmyk-no-data.jpg", withJPEGSize(cmyk, 11000, 11000), ""},
		{"rgba16.png", zeroPNG(t, 11000, 11000, 6, 16), ""},
		{"grey-zeros.png", zeroPNG(t, 11000, 11000, 0, 8), ""},
		{"frame.gif", tinyGIF(11000, 11000), "truncated"},
		// The largest progressive JPEG the budget admits holds its
		// coefficients: 155 MiB at 9000x9000 grey.
		{"progressive.jpg", emptyRefinementJPEG(9000, 9000, 2), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestPeakRSSHelper$", "-test.v")
			cmd.Env = append(os.Environ(), rssHelperEnv+"="+path)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if failed := strings.Contains(string(out), "error:"); failed != (tc.want != "") || !strings.Contains(string(out), tc.want) {
				t.Errorf("child output, want %q:\n%s", tc.want, out)
			}
			rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10 // KiB on Linux
			if rss > limit {
				t.Errorf("%d-byte file: peak RSS %d MiB, limit %d MiB", len(tc.data), rss>>20, limit>>20)
			}
			t.Logf("%d-byte file: peak RSS %d MiB", len(tc.data), rss>>20)
		})
	}
}

// TestFileReadInPlace: a regular file is read into one buffer of its size,
// a stream of unknown length in chunks joined once (twice its size).
func TestFileReadInPlace(t *testing.T) {
	const w, h = 2000, 2000
	data := append([]byte(fmt.Sprintf("P5 %d %d 255\n", w, h)), make([]byte, w*h)...)
	path := filepath.Join(t.TempDir(), "big.pgm")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	size := uint64(len(data))
	for _, tc := range []struct {
		name  string
		read  func() error
		limit uint64
	}{
		{"file", func() error { _, err := Load(path, DefaultOptions()); return err }, size + 4<<20},
		{"stream", func() error {
			_, err := Read(struct{ io.Reader }{bytes.NewReader(data)}, "stdin", DefaultOptions())
			return err
		}, 2*size + 24<<20},
	} {
		var err error
		alloc := allocDuring(func() { err = tc.read() })
		if err != nil {
			t.Fatal(err)
		}
		if alloc > tc.limit {
			t.Errorf("%s: %d-byte image allocated %d bytes, limit %d", tc.name, size, alloc, tc.limit)
		}
		t.Logf("%s: %d-byte image, allocated %.1f MiB", tc.name, size, float64(alloc)/(1<<20))
	}
}
