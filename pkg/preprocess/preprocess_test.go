package preprocess

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/res2net/res2net/internal/npy"
)

// Fixtures come from scripts/make_preprocess_fixtures.py (Pillow 9.4,
// torchvision 0.14) and, for real photos, testdata/photos.

type formatFixture struct {
	File     string `json:"file"`
	Mode     string `json:"mode"`
	Oriented bool   `json:"oriented"`
}

func readManifest(t *testing.T) []formatFixture {
	t.Helper()
	b, err := os.ReadFile("testdata/formats/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var m []formatFixture
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func decodeFile(t testing.TB, path string, opts Options) *image.NRGBA {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := Decode(f, opts)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// diffRGB compares img with a Pillow HxWx3 reference and returns the
// largest and the mean absolute difference.
func diffRGB(t *testing.T, img *image.NRGBA, ref []byte, shape []int) (maxd, mean float64) {
	t.Helper()
	if len(shape) != 3 || shape[2] != 3 || img.Rect.Dx() != shape[1] || img.Rect.Dy() != shape[0] {
		t.Fatalf("decoded %v, Pillow has shape %v", img.Rect.Size(), shape)
	}
	var sum float64
	for y := 0; y < shape[0]; y++ {
		for x := 0; x < shape[1]; x++ {
			p := img.Pix[img.PixOffset(x, y):]
			if p[3] != 255 {
				t.Fatalf("alpha %d at %d,%d", p[3], x, y)
			}
			for c := 0; c < 3; c++ {
				d := math.Abs(float64(p[c]) - float64(ref[(y*shape[1]+x)*3+c]))
				sum += d
				maxd = math.Max(maxd, d)
			}
		}
	}
	return maxd, sum / float64(len(ref))
}

func TestDecodeMatchesPillow(t *testing.T) {
	for _, fx := range readManifest(t) {
		t.Run(fx.File, func(t *testing.T) {
			path := filepath.Join("testdata/formats", fx.File)
			opts := DefaultOptions()
			opts.Orient = fx.Oriented
			img := decodeFile(t, path, opts)
			ref, shape, err := npy.ReadUint8(path + ".rgb.npy")
			if err != nil {
				t.Fatal(err)
			}
			// Lossy formats too: the JPEG and WebP paths reproduce libjpeg-turbo
			// and libwebp exactly.
			if maxd, mean := diffRGB(t, img, ref, shape); maxd != 0 {
				t.Errorf("Pillow mode %s: differs from Pillow by up to %v (mean %.4f)", fx.Mode, maxd, mean)
			}
		})
	}
}

func TestOrientOff(t *testing.T) {
	base, shape, err := npy.ReadUint8("testdata/formats/orient1.png.rgb.npy")
	if err != nil {
		t.Fatal(err)
	}
	for o := 1; o <= 8; o++ {
		opts := DefaultOptions()
		opts.Orient = false
		img := decodeFile(t, fmt.Sprintf("testdata/formats/orient%d.png", o), opts)
		if maxd, _ := diffRGB(t, img, base, shape); maxd != 0 {
			t.Errorf("orientation %d applied with Orient=false", o)
		}
	}
}

// pattern is the synthetic image of scripts/make_preprocess_fixtures.py.
func pattern(w, h int) *image.NRGBA {
	m := newOpaque(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				v := (x*73 + y*151 + c*29 + ((x*y)>>3)*7 + ((x^y)&15)*19) % 256
				m.Pix[m.PixOffset(x, y)+c] = uint8(v)
			}
		}
	}
	return m
}

func TestResizeMatchesPillow(t *testing.T) {
	files, err := filepath.Glob("testdata/resize/*.npy")
	if err != nil || len(files) == 0 {
		t.Fatal("no resize fixtures", err)
	}
	for _, f := range files {
		var w, h, ow, oh int
		if _, err := fmt.Sscanf(filepath.Base(f), "%dx%d_%dx%d.npy", &w, &h, &ow, &oh); err != nil {
			t.Fatal(f, err)
		}
		t.Run(fmt.Sprintf("%dx%d_to_%dx%d", w, h, ow, oh), func(t *testing.T) {
			ref, shape, err := npy.ReadUint8(f)
			if err != nil {
				t.Fatal(err)
			}
			src := pattern(w, h)
			got := resizeRegion(src, ow, oh, 0, 0, ow, oh)
			if got.w != shape[1] || got.h != shape[0] {
				t.Fatalf("size %dx%d, Pillow %dx%d", got.w, got.h, shape[1], shape[0])
			}
			if n := countDiff(got.pix, ref); n != 0 {
				t.Errorf("%d of %d values differ from Pillow", n, len(ref))
			}
			// Any sub-rectangle must equal the same part of the full result.
			for _, r := range []image.Rectangle{
				image.Rect(ow/3, oh/4, ow-ow/5, oh-oh/3), image.Rect(ow-1, oh-1, ow, oh), image.Rect(0, 0, 1, oh),
			} {
				if r.Empty() {
					continue
				}
				part := resizeRegion(src, ow, oh, r.Min.X, r.Min.Y, r.Max.X, r.Max.Y)
				if n := countDiff(part.pix, cropRGB(got, r.Min.X, r.Min.Y, r.Max.X, r.Max.Y).pix); n != 0 {
					t.Errorf("region %v: %d values differ from the full resize", r, n)
				}
			}
		})
	}
}

func countDiff(a, b []byte) int {
	if len(a) != len(b) {
		return max(len(a), len(b))
	}
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

func TestNormTableMatchesTorch(t *testing.T) {
	ref, err := npy.Read("testdata/transform/norm_table.npy")
	if err != nil {
		t.Fatal(err)
	}
	table := normTable(HolocronTransform())
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			if got, want := table[c][v], ref.Data[c*256+v]; got != want {
				t.Errorf("channel %d value %d: %v, torch %v", c, v, got, want)
			}
		}
	}
}

func TestTransformMatchesTorchvision(t *testing.T) {
	files, err := filepath.Glob("testdata/transform/rgb8_r*_c*.npy")
	if err != nil || len(files) == 0 {
		t.Fatal("no transform fixtures", err)
	}
	img := decodeFile(t, "testdata/formats/rgb8.png", DefaultOptions())
	for _, f := range files {
		opts := DefaultOptions()
		if _, err := fmt.Sscanf(filepath.Base(f), "rgb8_r%d_c%d.npy", &opts.Resize, &opts.Crop); err != nil {
			t.Fatal(err)
		}
		ref, err := npy.Read(f)
		if err != nil {
			t.Fatal(err)
		}
		got := opts.Transform.Apply(img)
		if fmt.Sprint(got.Shape) != fmt.Sprint(ref.Shape) {
			t.Fatalf("%s: shape %v, torchvision %v", f, got.Shape, ref.Shape)
		}
		for i := range got.Data {
			if got.Data[i] != ref.Data[i] {
				t.Errorf("%s: element %d is %v, torchvision %v", f, i, got.Data[i], ref.Data[i])
				break
			}
		}
	}
}

// TestTransformGeometryFixtures runs the Holocron (232/224) and timm
// (256/224) transforms on sizes that exercise truncation, half-to-even
// crop offsets and extreme aspect ratios, against torchvision's uint8 crop.
func TestTransformGeometryFixtures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tr    Transform
		sizes [][2]int
	}{
		{"default", HolocronTransform(), [][2]int{{451, 301}, {1, 5000}, {5000, 1}, {1, 1}}},
		{"timm", TimmTransform(224, 0.875), [][2]int{{451, 301}, {301, 451}, {640, 480}, {255, 700}}},
	} {
		table := normTable(tc.tr)
		for _, size := range tc.sizes {
			w, h := size[0], size[1]
			ref, shape, err := npy.ReadUint8(fmt.Sprintf("testdata/transform/pattern_%dx%d_%s.npy", w, h, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			got := tc.tr.Apply(pattern(w, h))
			if fmt.Sprint(got.Shape) != "[3 224 224]" {
				t.Fatalf("%s %dx%d: shape %v", tc.name, w, h, got.Shape)
			}
			bad := 0
			for c := 0; c < 3; c++ {
				for y := 0; y < 224; y++ {
					for x := 0; x < 224; x++ {
						// The reference keeps one row or column when all are alike.
						ry, rx := min(y, shape[0]-1), min(x, shape[1]-1)
						want := table[c][ref[(ry*shape[1]+rx)*3+c]]
						if got.Data[(c*224+y)*224+x] != want {
							bad++
						}
					}
				}
			}
			if bad != 0 {
				t.Errorf("%s %dx%d: %d values differ from torchvision", tc.name, w, h, bad)
			}
		}
	}
}

func TestTimmTransform(t *testing.T) {
	tr := TimmTransform(224, 0.875)
	if tr.Resize != 256 || tr.Crop != 224 || tr.Interpolation != Bilinear || tr.Mean != ImageNetMean || tr.Std != ImageNetStd {
		t.Errorf("TimmTransform(224, 0.875) = %+v", tr)
	}
	if err := tr.Validate(); err != nil {
		t.Error(err)
	}
	for _, bad := range []Transform{
		{Resize: -1, Crop: 224, Std: ImageNetStd},
		{Resize: 232, Crop: 1 << 20, Std: ImageNetStd},
		{Resize: 232, Crop: 224},
		{Resize: 232, Crop: 224, Std: ImageNetStd, Interpolation: "bicubic"},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted", bad)
		}
		if _, err := Read(bytes.NewReader(nil), "x.png", Options{Transform: bad}); err == nil || !strings.Contains(err.Error(), "x.png") {
			t.Errorf("Read with %+v: %v", bad, err)
		}
	}
}

// TestGeometry compares the resize sizes and crop offsets with
// torchvision's (transform/geometry.json), and maps the crop back.
func TestGeometry(t *testing.T) {
	b, err := os.ReadFile("testdata/transform/geometry.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		W, H, Resize, Crop int
		ResizedW           int `json:"resized_w"`
		ResizedH           int `json:"resized_h"`
		Left, Top          int
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		tr := HolocronTransform()
		tr.Resize, tr.Crop = c.Resize, c.Crop
		g := tr.Geometry(c.W, c.H)
		cw, ch := c.Crop, c.Crop
		if c.Crop == 0 {
			cw, ch = c.ResizedW, c.ResizedH
		}
		want := Geometry{SrcW: c.W, SrcH: c.H, ResizedW: c.ResizedW, ResizedH: c.ResizedH, Left: c.Left, Top: c.Top, CropW: cw, CropH: ch}
		if g != want {
			t.Errorf("%dx%d resize %d crop %d: %+v, torchvision %+v", c.W, c.H, c.Resize, c.Crop, g, want)
		}
		// The crop's corners map to the source through the resize scale.
		x, y := g.ToSource(0, 0)
		wantX := float64(c.Left) * float64(c.W) / float64(c.ResizedW)
		wantY := float64(c.Top) * float64(c.H) / float64(c.ResizedH)
		if math.Abs(x-wantX) > 1e-9 || math.Abs(y-wantY) > 1e-9 {
			t.Errorf("%dx%d: ToSource(0, 0) = %v, %v", c.W, c.H, x, y)
		}
		if x, y := (Geometry{SrcW: c.W, SrcH: c.H, ResizedW: c.ResizedW, ResizedH: c.ResizedH}).ToSource(float64(c.ResizedW), float64(c.ResizedH)); math.Abs(x-float64(c.W)) > 1e-9 || math.Abs(y-float64(c.H)) > 1e-9 {
			t.Errorf("%dx%d: the resized image's far corner maps to %v, %v", c.W, c.H, x, y)
		}
	}
}

type photoManifest struct {
	Files []struct {
		File string `json:"file"`
		RGB  string `json:"rgb"`
		Crop string `json:"crop"`
	} `json:"files"`
}

// TestPhotos compares real photos (testdata/photos, written by the python
// helper) with Pillow's pixels and torchvision's resized crops; the crop
// normalised with the table that TestNormTableMatchesTorch checks is
// torchvision's tensor.
func TestPhotos(t *testing.T) {
	const dir = "../../testdata/photos"
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m photoManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		t.Run(f.File, func(t *testing.T) {
			opts := DefaultOptions()
			opts.Orient = false // the references follow Pillow's open
			path := filepath.Join(dir, f.File)
			img := decodeFile(t, path, opts)
			ref, shape, err := npy.ReadUint8(filepath.Join(dir, f.RGB))
			if err != nil {
				t.Fatal(err)
			}
			maxd, mean := diffRGB(t, img, ref, shape)
			tensor, err := Load(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			crop, cshape, err := npy.ReadUint8(filepath.Join(dir, f.Crop))
			if err != nil {
				t.Fatal(err)
			}
			table := normTable(opts.Transform)
			plane := cshape[0] * cshape[1]
			var tmax float64
			for i, v := range crop {
				c, p := i%3, i/3
				tmax = math.Max(tmax, math.Abs(float64(tensor.Data[c*plane+p]-table[c][v])))
			}
			if maxd != 0 || tmax != 0 {
				t.Errorf("pixels differ from Pillow by up to %v (mean %.4f), tensor from torchvision by %.3g", maxd, mean, tmax)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	jpegData, err := os.ReadFile("testdata/formats/q90_420.jpg")
	if err != nil {
		t.Fatal(err)
	}
	pngData, err := os.ReadFile("testdata/formats/rgb8.png")
	if err != nil {
		t.Fatal(err)
	}
	webpData, err := os.ReadFile("testdata/formats/lossy.webp")
	if err != nil {
		t.Fatal(err)
	}
	readFile := func(name string) string {
		return string(mustRead(t, filepath.Join("testdata", name)))
	}
	twelveBit := []byte(withJPEGSize(jpegData, 61, 45))
	twelveBit[bytes.Index(twelveBit, []byte("\xff\xc0"))+4] = 12
	for _, tc := range []struct {
		name, data, want string
		unsupported      bool
	}{
		{"arithmetic.jpg", readFile("arithmetic.jpg"), "arithmetic-coded", true},
		{"twelve.jpg", string(twelveBit), "12-bit", true},
		{"animated.webp", readFile("animated.webp"), "animated WebP", true},
		{"cmyk.tif", readFile("cmyk.tif"), "color model", true},
		{"empty.jpg", "", "empty", true},
		{"notes.jpg", "just some text\nnot a photo\n", "text", true},
		{"photo.heic", "\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC", true},
		{"photo.avif", "\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", "AVIF", true},
		{"drawing.svg", "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>", "SVG", true},
		{"blob.png", "\x00\x01\x02\x03\xfe\xff", "unrecognised", true},
		{"cut.jpg", string(jpegData[:len(jpegData)/2]), "JPEG", false},
		{"header-only.jpg", string(jpegData[:200]), "JPEG", false},
		{"no-eoi.jpg", string(jpegData[:len(jpegData)-2]), "truncated", false},
		{"cut.png", string(pngData[:len(pngData)/2]), "PNG", false},
		{"cut.webp", string(webpData[:len(webpData)/2]), "WebP", false},
		{"magic.gif", "GIF89a", "GIF", false},
		{"magic.bmp", "BM", "BMP", false},
		{"magic.tif", "II*\x00", "TIFF", false},
		{"cut.ppm", string(readFile("formats/rgb.ppm")[:100]), "truncated", false},
		{"header.pgm", "P5 12", "PPM", false},
		{"maxval.pgm", "P5 1 1 70000\n\x00", "maxval", false},
		{"plain-bad.pbm", "P1 2 1\n0 2", "invalid", false},
		{"plain-big.pgm", "P2 2 1 10\n3 11", "larger than maxval", false},
		{"cut.tga", string(readFile("formats/rgb.tga")[:200]), "truncated", false},
		{"cut-rle.tga", string(readFile("formats/rgb_rle.tga")[:200]), "truncated", false},
		{"run-across.tga", string(tgaRunAcrossRows()), "crosses", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tc.data), tc.name, DefaultOptions())
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.name) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q should name the file and say %q", msg, tc.want)
			}
			t.Log(msg)
			if errors.Is(err, ErrUnsupported) != tc.unsupported {
				t.Errorf("errors.Is(ErrUnsupported) = %v for %q", !tc.unsupported, msg)
			}
		})
	}
	if _, err := Load("testdata/does-not-exist.png", DefaultOptions()); err == nil || !strings.Contains(err.Error(), "does-not-exist.png") {
		t.Errorf("missing file: %v", err)
	}
}

func TestIsImageFile(t *testing.T) {
	for name, want := range map[string]bool{
		"a.jpg": true, "b.JPEG": true, "c.png": true, "d.Webp": true, "e.tif": true, "f.tiff": true,
		"g.bmp": true, "h.gif": true, "i.heic": false, "j.txt": false, "jpg": false, "dir/k.jpg.npy": false,
		"l.PPM": true, "m.pgm": true, "n.pbm": true, "o.tga": true,
	} {
		if got := IsImageFile(name); got != want {
			t.Errorf("IsImageFile(%q) = %v", name, got)
		}
		if got := IsImageName(name); got != want && !strings.HasSuffix(name, ".heic") {
			t.Errorf("IsImageName(%q) = %v", name, got)
		}
	}
	for _, name := range []string{"a.heic", "b.AVIF", "c.jxl", "d.psd"} {
		if !IsImageName(name) || IsImageFile(name) {
			t.Errorf("%s: IsImageName %v, IsImageFile %v", name, IsImageName(name), IsImageFile(name))
		}
	}
}

func TestDefaultOptions(t *testing.T) {
	o := DefaultOptions()
	if o.Resize != 232 || o.Crop != 224 || !o.Orient || o.MaxPixels != 128_000_000 || o.Interpolation != Bilinear ||
		o.Mean != [3]float32{0.485, 0.456, 0.406} || o.Std != [3]float32{0.229, 0.224, 0.225} {
		t.Errorf("DefaultOptions() = %+v", o)
	}
}

// allocDuring returns the bytes allocated while f runs.
func allocDuring(f func()) uint64 {
	var before, after runtimeMem
	before.read()
	f()
	after.read()
	return after.total - before.total
}

func TestDecompressionBomb(t *testing.T) {
	pngData, err := os.ReadFile("testdata/formats/rgb8.png")
	if err != nil {
		t.Fatal(err)
	}
	jpegData, err := os.ReadFile("testdata/formats/q90_420.jpg")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"bomb.png", withPNGSize(pngData, 50000, 50000)},
		{"bomb.jpg", withJPEGSize(jpegData, 50000, 50000)},
	} {
		var err error
		alloc := allocDuring(func() { _, err = Read(bytes.NewReader(tc.data), tc.name, DefaultOptions()) })
		if err == nil || !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%s: want ErrTooLarge, got %v", tc.name, err)
		}
		for _, s := range []string{tc.name, "50000x50000", "2500000000", "128000000"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not mention %s", tc.name, err, s)
			}
		}
		if alloc > 1<<20 {
			t.Errorf("%s: refusing allocated %d bytes", tc.name, alloc)
		}
	}
}

// endless reads prefix once, then fill forever.
type endless struct {
	prefix []byte
	fill   byte
}

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, e.prefix)
	e.prefix = e.prefix[n:]
	for i := n; i < len(p); i++ {
		p[i] = e.fill
	}
	return len(p), nil
}

// counting counts the bytes read through it.
type counting struct {
	r io.Reader
	n int64
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestEndlessInput: endless streams are read incrementally and refused as
// soon as their first bytes show they are no image, their header is
// complete and too large, or they pass the byte limit, instead of being
// read until memory runs out (predict - once held 2.8 GB of
// "\xff\xd8\xff" and zeros).
func TestEndlessInput(t *testing.T) {
	png := withPNGSize(mustRead(t, "testdata/formats/rgb8.png"), 50000, 50000)
	for _, tc := range []struct {
		name    string
		src     *endless
		want    error
		say     string
		maxRead int64
	}{
		{"zeros", &endless{}, ErrUnsupported, "unrecognised", 4 << 10},
		{"jpeg-zeros.jpg", &endless{prefix: []byte("\xff\xd8\xff")}, ErrUnsupported, "without a marker", 4 << 20},
		{"huge.png", &endless{prefix: png[:33], fill: 0xa5}, ErrTooLarge, "2500000000", 128 << 10},
		{"bad-chunk.png", &endless{prefix: []byte("\x89PNG\r\n\x1a\n"), fill: 0xa5}, nil, "PNG header", 128 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &counting{r: tc.src}
			var err error
			alloc := allocDuring(func() { _, err = Read(r, tc.name, DefaultOptions()) })
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.say) || !strings.Contains(err.Error(), tc.name) {
				t.Fatalf("want %v saying %q and naming the input, got %v", tc.want, tc.say, err)
			}
			if r.n > tc.maxRead {
				t.Errorf("read %d bytes before refusing, want at most %d", r.n, tc.maxRead)
			}
			if alloc > uint64(3*tc.maxRead+1<<20) {
				t.Errorf("refusing allocated %d bytes", alloc)
			}
			t.Logf("read %d bytes, allocated %d: %v", r.n, alloc, err)
		})
	}

	saved := maxFileBytes
	maxFileBytes = 1 << 20
	t.Cleanup(func() { maxFileBytes = saved })
	for name, prefix := range map[string]string{
		"endless.jpg": "\xff\xd8\xff\xe0",
		"endless.pgm": "P2 100 100 255\n", // plain: no end the header tells
	} {
		_, err := Read(&endless{prefix: []byte(prefix), fill: 0xa5}, name, DefaultOptions())
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: want ErrTooLarge naming the input, got %v", name, err)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tgaRunAcrossRows is a 3x2 RLE TGA whose run packet crosses the first
// row's end, which Pillow refuses ("buffer overrun").
func tgaRunAcrossRows() []byte {
	return append(tgaFileHeader(10, 24, 3, 2), 0x85, 1, 2, 3)
}

// TestStreamStopsAfterPixels checks that a stream is read no further than
// the pixels its header declares (netpbm's binary forms, BMP), and that a
// BMP or TIFF whose raster is over the budget is refused from its header:
// a small image followed by a gigabyte of zeros on standard input held
// the whole gigabyte before.
func TestStreamStopsAfterPixels(t *testing.T) {
	huge := mustRead(t, "testdata/formats/rgb24.bmp")[:54:54]
	binary.LittleEndian.PutUint32(huge[18:], 8000)
	binary.LittleEndian.PutUint32(huge[22:], 8000)
	const maxRead = 256 << 10
	for _, tc := range []struct {
		name string
		src  *endless
		want string // error text; "" for success
	}{
		{"grey.pgm", &endless{prefix: []byte("P5 100 100 255\n")}, ""},
		{"grey16.pgm", &endless{prefix: []byte("P5 # comment\n100 100\n65535\n"), fill: 9}, ""},
		{"bits.pbm", &endless{prefix: []byte("P4\n100 100\n")}, ""},
		{"rgb.ppm", &endless{prefix: []byte("P6 100 100 255\n"), fill: 200}, ""},
		{"rgb24.bmp", &endless{prefix: mustRead(t, "testdata/formats/rgb24.bmp")}, ""},
		{"palette8.bmp", &endless{prefix: mustRead(t, "testdata/formats/palette8.bmp")}, ""},
		{"huge.bmp", &endless{prefix: huge}, "BMP header: image too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &counting{r: tc.src}
			_, err := Read(r, tc.name, DefaultOptions())
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("want an error saying %q, got %v", tc.want, err)
			}
			if r.n > maxRead {
				t.Errorf("read %d bytes, want at most %d", r.n, maxRead)
			}
		})
	}
}

// TestStreamStopsAtDataEnd checks that a stream is read no further than
// the end its structure shows (PNG's IEND, GIF's trailer, WebP's RIFF
// size, JPEG's EOI after all scans, an uncompressed TGA's last row), and
// that the bytes after it change nothing, as in Pillow: a valid image
// followed by a gigabyte of garbage on standard input was held whole
// before failing.
func TestStreamStopsAtDataEnd(t *testing.T) {
	saved := maxFileBytes
	maxFileBytes = 64 << 20 // a stream not stopped fails here, quickly
	t.Cleanup(func() { maxFileBytes = saved })
	for _, name := range []string{
		"rgb8.png", "interlaced_rgb.png", "palette.png", "orient6.png",
		"palette.gif", "offset_trns.gif", "grey.gif",
		"lossy.webp", "lossless_rgba.webp", "orient8.webp",
		"q90_420.jpg", "q75_420_progressive.jpg", "cjpeg_progressive_restart.jpg",
		"cjpeg_restart_blocks.jpg", "cjpeg_sequential_scans.jpg", "orient6.jpg", "cmyk.jpg",
		"rgb.tga", "bilevel.tga", "palette16.tga",
	} {
		for _, fill := range []byte{0, 0xff} {
			t.Run(fmt.Sprintf("%s/%#x", name, fill), func(t *testing.T) {
				path := "testdata/formats/" + name
				want, err := Load(path, DefaultOptions())
				if err != nil {
					t.Fatal(err)
				}
				file := mustRead(t, path)
				r := &counting{r: &endless{prefix: file, fill: fill}}
				got, err := Read(r, name, DefaultOptions())
				if err != nil {
					t.Fatal(err)
				}
				// Reads double from readChunk: the one holding the end
				// is at most as long as all before it.
				if limit := 2*int64(len(file)) + readChunk; r.n > limit {
					t.Errorf("read %d bytes of a %d-byte image, want at most %d", r.n, len(file), limit)
				}
				if !slices.Equal(got.Shape, want.Shape) || !slices.Equal(got.Data, want.Data) {
					t.Errorf("the image followed by %#x bytes decodes differently from the file", fill)
				}
			})
		}
	}
}

// TestDataEndAcrossChunks checks that the walkers find each fixture's end
// whatever the pieces its bytes arrive in (headers and markers split
// between reads), walking on as pieces are added.
func TestDataEndAcrossChunks(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(*endWalk) int64
	}{
		{"interlaced_rgb.png", pngEnd}, {"palette_trns.png", pngEnd},
		{"offset.gif", gifEnd}, {"palette_trns.gif", gifEnd},
		{"lossy_rgba.webp", webpEnd},
		{"q90_444.jpg", jpegEnd}, {"cjpeg_progressive_restart.jpg", jpegEnd}, {"cjpeg_restart_rows.jpg", jpegEnd}, {"adobe_rgb.jpg", jpegEnd},
	} {
		file := mustRead(t, "testdata/formats/"+tc.name)
		for piece := 1; piece <= 7; piece += 3 {
			var w endWalk
			var end int64
			for off := 0; off < len(file) && end == 0; off += piece {
				w.chunks = append(w.chunks, file[off:min(off+piece, len(file))])
				w.total += int64(len(w.chunks[len(w.chunks)-1]))
				end = tc.end(&w)
			}
			if end != int64(len(file)) {
				t.Errorf("%s in %d-byte pieces: end %d, want %d", tc.name, piece, end, len(file))
			}
		}
	}
}
