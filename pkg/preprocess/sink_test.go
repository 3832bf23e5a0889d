package preprocess

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"testing"
)

// TestOrientedResample: resizing rows as they arrive with an EXIF
// orientation gives exactly the transform of the rotated image, for
// downscales, upscales, crops larger than the image and no-ops.
func TestOrientedResample(t *testing.T) {
	for _, size := range [][2]int{{61, 45}, {45, 61}, {7, 300}, {1, 1}, {33, 2}} {
		img := pattern(size[0], size[1])
		for _, tr := range []Transform{
			{Resize: 24, Crop: 16, Mean: ImageNetMean, Std: ImageNetStd},
			{Resize: 80, Crop: 64, Mean: ImageNetMean, Std: ImageNetStd},
			{Resize: 20, Crop: 40, Mean: ImageNetMean, Std: ImageNetStd},
			{Crop: 30, Mean: ImageNetMean, Std: ImageNetStd},
			{Resize: min(size[0], size[1]), Mean: ImageNetMean, Std: ImageNetStd},
		} {
			for o := 1; o <= 8; o++ {
				want := tr.Apply(orient(img, o))
				s, err := newTransformSink(tr, size[0], size[1], o, decodeBudget)
				if err != nil {
					t.Fatal(err)
				}
				rgbRows(img, s)
				got := s.finish()
				if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
					t.Fatalf("%v %+v orientation %d: shape %v, want %v", size, tr, o, got.Shape, want.Shape)
				}
				for i := range got.Data {
					if got.Data[i] != want.Data[i] {
						t.Errorf("%v resize %d crop %d orientation %d: element %d is %v, want %v",
							size, tr.Resize, tr.Crop, o, i, got.Data[i], want.Data[i])
						break
					}
				}
			}
		}
	}
}

// TestReadOriented: Read applies the orientation of the fixtures as
// Decode and exif_transpose do.
func TestReadOriented(t *testing.T) {
	for _, name := range []string{"orient6.jpg", "orient8.webp", "orient5.tif", "orient3_xmp.png", "orient7.png"} {
		data, err := os.ReadFile("testdata/formats/" + name)
		if err != nil {
			t.Fatal(err)
		}
		opts := DefaultOptions()
		opts.Resize, opts.Crop = 20, 12
		img, err := Decode(bytes.NewReader(data), opts)
		if err != nil {
			t.Fatal(err)
		}
		want := opts.Transform.Apply(img)
		got, err := Read(bytes.NewReader(data), name, opts)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got.Data) != fmt.Sprint(want.Data) {
			t.Errorf("%s: Read differs from Apply(Decode)", name)
		}
	}
}

// TestTinyFilesHugeImages: small files that declare large images cost
// memory in proportion to what they contain, or to the resized image,
// never to the declared pixels (issue: 171 bytes of CMYK JPEG took 2 GB).
func TestTinyFilesHugeImages(t *testing.T) {
	cmyk, err := os.ReadFile("testdata/formats/cmyk_no_data.jpg")
	if err != nil {
		t.Fatal(err)
	}
	cut := cmyk[:len(cmyk)-2] // no end marker: the entropy data is missing
	const mib = 1 << 20
	side := uint16(6000)
	if raceSlowdown > 1 {
		side = 2000 // for time
	}
	for _, tc := range []struct {
		name  string
		data  []byte
		want  string // error text; "" for success
		limit uint64 // bytes allocated at most
	}{
		{"cmyk-no-data.jpg", withJPEGSize(cmyk, side, side), "", 48 * mib},
		{"cmyk-cut.jpg", withJPEGSize(cut, 11000, 11000), "truncated", 4 * mib},
		{"gif-35-bytes.gif", tinyGIF(11000, 11000), "truncated", mib},
		{"progressive-no-data.jpg", emptyRefinementJPEG(9000, 9000, 0)[:400], "truncated", 4 * mib},
		{"rle.tga", append(tgaFileHeader(10, 24, 11000, 11000), 0xff, 1, 2, 3), "truncated", mib},
		{"plain.pgm", []byte("P2 11000 11000 255\n0 0 0\n"), "truncated", mib},
		{"raw.ppm", []byte("P6 11000 11000 255\n\x00\x00\x00"), "truncated", mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			alloc := allocDuring(func() { _, err = Read(bytes.NewReader(tc.data), tc.name, DefaultOptions()) })
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("want an error saying %q, got %v", tc.want, err)
			}
			if alloc > tc.limit {
				t.Errorf("%d-byte file: allocated %d MiB, limit %d MiB", len(tc.data), alloc/mib, tc.limit/mib)
			}
			t.Logf("%d bytes: allocated %.1f MiB (%v)", len(tc.data), float64(alloc)/mib, err)
		})
	}
}

// tinyGIF is a 35-byte GIF whose one frame declares w x h pixels.
func tinyGIF(w, h int) []byte {
	b := []byte("GIF89a")
	b = append(b, byte(w), byte(w>>8), byte(h), byte(h>>8), 0x80, 0, 0)
	b = append(b, 0, 0, 0, 255, 255, 255) // 2-colour table
	b = append(b, 0x2c, 0, 0, 0, 0, byte(w), byte(w>>8), byte(h), byte(h>>8), 0)
	b = append(b, 2, 2, 0x4c, 0x01, 0, 0x3b)
	return b
}

// TestBudget: what would need more than the decoding budget is refused
// with ErrTooLarge, before the memory is taken.
func TestBudget(t *testing.T) {
	src, err := os.ReadFile("testdata/formats/q75_420_progressive.jpg")
	if err != nil {
		t.Fatal(err)
	}
	prog := withJPEGSize(src, 11000, 11000)
	alloc := allocDuring(func() { _, err = Read(bytes.NewReader(prog), "big.jpg", DefaultOptions()) })
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "coefficients") {
		t.Errorf("121-Mpx progressive JPEG: want ErrTooLarge for its coefficients, got %v", err)
	}
	if alloc > 1<<20 {
		t.Errorf("refusing allocated %d bytes", alloc)
	}

	// An interlaced PNG, which image/png decodes whole.
	png := zeroPNG(t, 8000, 8000, 0, 8)
	png[28] = 1 // interlace method Adam7
	binary.BigEndian.PutUint32(png[29:], crc32.ChecksumIEEE(png[12:29]))
	alloc = allocDuring(func() { _, err = Read(bytes.NewReader(png), "interlaced.png", DefaultOptions()) })
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "interlaced") || alloc > 2<<20 {
		t.Errorf("64-Mpx interlaced PNG: want ErrTooLarge before allocating, got %v after %d bytes", err, alloc)
	}

	// A transform whose streamed intermediate would exceed the budget.
	big := withJPEGSize(mustRead(t, "testdata/formats/cmyk_no_data.jpg"), 11000, 11000)
	opts := DefaultOptions()
	opts.Resize, opts.Crop = 8192, 8192
	if _, err := Read(bytes.NewReader(big), "big.jpg", opts); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "resizing") {
		t.Errorf("crop 8192 of 11000x11000: want ErrTooLarge for the resize, got %v", err)
	}
}

// tgaFileHeader is an 18-byte top-down TGA header.
func tgaFileHeader(imageType, depth, w, h int) []byte {
	b := make([]byte, tgaHeaderLen)
	b[2], b[16], b[17] = byte(imageType), byte(depth), 0x20
	b[12], b[13], b[14], b[15] = byte(w), byte(w>>8), byte(h), byte(h>>8)
	return b
}
