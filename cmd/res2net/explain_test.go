package main

import (
	"context"
	"encoding/json"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/res2net/res2net/internal/npy"
	"github.com/res2net/res2net/internal/paritytest"
	"github.com/res2net/res2net/pkg/cam"
	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/preprocess"
	"github.com/res2net/res2net/pkg/registry"
)

const beyondDir = "../../testdata/beyond"

// beyondPhotos are the photos scripts/make_beyond_fixtures.py computed
// PyTorch's maps and features for, with their fixture stems.
var beyondPhotos = []struct{ file, stem string }{
	{"astronaut.jpg", "astronaut"},
	{"chelsea.palette.png", "chelsea.palette"},
	{"coffee.png", "coffee"},
	{"camera.grey.png", "camera.grey"},
	{"rocket.lossy.webp", "rocket.lossy"},
}

// testNet runs the tiny checkpoint as the default model, whose Imagenette
// names it then gets (it has as many classes).
func testNet() netFlags {
	return netFlags{Model: modelFlags{Model: registry.Default.Name, Weights: tinyWeights}, Run: runFlags{BatchSize: 2, Threads: 2}, Transform: transformFlags{NoOrient: true}, Quiet: true}
}

// TestExplainMatchesPyTorch compares the JSON grids of the tiny checkpoint
// with PyTorch's maps (last-stage features times the head's weights).
func TestExplainMatchesPyTorch(t *testing.T) {
	checkExplainParity(t, tinyWeights, beyondDir, func(t *testing.T, file string) int {
		base, _, _ := strings.Cut(file, ".")
		logits, err := npy.Read(filepath.Join(photosDir, base+".logits.npy"))
		if err != nil {
			t.Fatal(err)
		}
		return ops.TopK(logits.Data, 1)[0]
	})
}

// TestParityExplainEmbed is TestExplainMatchesPyTorch and
// TestEmbedMatchesPyTorch for the full-size seeded checkpoint of `make
// parity` (scripts/make_beyond_fixtures.py --full).
func TestParityExplainEmbed(t *testing.T) {
	dir := paritytest.Dir(t)
	photos := paritytest.ReadPhotos(t, dir, "photos.logits.npy")
	weights, fixtures := filepath.Join(dir, "full.pth"), filepath.Join(dir, "beyond")
	checkExplainParity(t, weights, fixtures, func(t *testing.T, file string) int {
		i := slices.Index(photos.Files, file)
		if i < 0 {
			t.Fatalf("%s not in photos.json", file)
		}
		return ops.TopK(photos.Row(i), 1)[0]
	})
	checkEmbedParity(t, weights, fixtures)
}

// checkExplainParity runs explain --format json on beyondPhotos with
// weights and compares each grid with PyTorch's in fixtures: each image's
// top-1 class (top gives PyTorch's) by default, and a chosen one with
// --class, by index and by label.
func checkExplainParity(t *testing.T, weights, fixtures string, top func(t *testing.T, file string) int) {
	for _, class := range []string{"", "3", "chain saw"} {
		t.Run("class="+class, func(t *testing.T) {
			ios, out, errOut := testIO("")
			net := testNet()
			net.Model.Weights = weights
			opts := &explainOptions{IO: ios, Format: "json", Class: class, Opacity: 0.5, Net: net}
			for _, p := range beyondPhotos {
				opts.Inputs = append(opts.Inputs, filepath.Join(photosDir, p.file))
			}
			if err := runExplain(context.Background(), opts); err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			dec := json.NewDecoder(out)
			for _, p := range beyondPhotos {
				var e explanation
				if err := dec.Decode(&e); err != nil {
					t.Fatalf("%s: %v", p.file, err)
				}
				if e.File != filepath.Join(photosDir, p.file) {
					t.Fatalf("result for %s, want %s (input order)", e.File, p.file)
				}
				cams, err := npy.Read(filepath.Join(fixtures, p.stem+".cams.npy"))
				if err != nil {
					t.Fatal(err)
				}
				want := 3 // "chain saw" is Imagenette class 3
				if class == "" {
					want = top(t, p.file)
				}
				if e.Class != want || e.Label != imagenette[want] {
					t.Fatalf("%s: class %d %q, want %d %q", p.file, e.Class, e.Label, want, imagenette[want])
				}
				h, w := cams.Shape[1], cams.Shape[2]
				grid := cams.Data[want*h*w : (want+1)*h*w]
				tol := 1e-4 * math.Max(1, maxAbsOf(grid))
				if len(e.CAM) != h || len(e.CAM[0]) != w {
					t.Fatalf("%s: grid %dx%d, want %dx%d", p.file, len(e.CAM), len(e.CAM[0]), h, w)
				}
				worst := 0.0
				for y := range h {
					for x := range w {
						d := math.Abs(float64(e.CAM[y][x] - grid[y*w+x]))
						if d > tol {
							t.Fatalf("%s: cell (%d, %d) = %v, PyTorch %v", p.file, x, y, e.CAM[y][x], grid[y*w+x])
						}
						worst = math.Max(worst, d)
					}
				}
				if !(e.Probability > 0 && e.Probability <= 1) {
					t.Errorf("%s: probability %v", p.file, e.Probability)
				}
				t.Logf("%s: class %d, max |difference| %.3g (tolerance %.3g)", p.file, e.Class, worst, tol)
			}
		})
	}
}

// imagenette are the published classes, which testNet's tiny checkpoint
// gets.
var imagenette = []string{"tench", "English springer", "cassette player", "chain saw", "church",
	"French horn", "garbage truck", "gas pump", "golf ball", "parachute"}

func maxAbsOf(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}

// TestExplainPNG checks the pictures: one per input, the size of the
// original photo, coloured inside the network's view and dimmed outside,
// named after the inputs in the -o folder; a failed input is reported and
// the others still drawn.
func TestExplainPNG(t *testing.T) {
	dir := t.TempDir()
	ios, _, errOut := testIO("")
	chelsea := filepath.Join(photosDir, "chelsea.palette.png")
	opts := &explainOptions{IO: ios, Format: "png", Opacity: 0.5, Net: testNet(), Output: filepath.Join(dir, "maps") + "/",
		Inputs: []string{chelsea, filepath.Join(photosDir, "missing.jpg"), filepath.Join(photosDir, "astronaut.jpg"), filepath.Join(photosDir, "astronaut.progressive.jpg")}}
	err := runExplain(context.Background(), opts)
	if err == nil || !strings.Contains(errOut.String(), "missing.jpg") {
		t.Fatalf("error %v, stderr %q: want the missing file reported", err, errOut)
	}
	for _, name := range []string{"chelsea.palette.cam.png", "astronaut.cam.png", "astronaut.progressive.cam.png"} {
		if _, err := os.Stat(filepath.Join(dir, "maps", name)); err != nil {
			t.Errorf("no %s: %v", name, err)
		}
	}
	f, err := os.Open(filepath.Join(dir, "maps", "chelsea.palette.cam.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// chelsea is 348x232: resized to 348x232 (shorter side 232), the
	// 224x224 crop starts at x = 62. Its left edge is outside: dimmed.
	if b := img.Bounds(); b.Dx() != 348 || b.Dy() != 232 {
		t.Fatalf("picture %v, want the photo's 348x232", b)
	}
	orig, err := os.Open(chelsea)
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	photo, err := png.Decode(orig)
	if err != nil {
		t.Fatal(err)
	}
	lum := func(x, y int, fromPhoto bool) float64 {
		src := img
		if fromPhoto {
			src = photo
		}
		r, g, b, _ := src.At(x, y).RGBA()
		return float64(r+g+b) / 3
	}
	for _, y := range []int{10, 100, 200} {
		if got, was := lum(20, y, false), lum(20, y, true); got > 0.5*was+300 {
			t.Errorf("pixel (20, %d) outside the crop not dimmed: %v from %v", y, got, was)
		}
	}
	// Inside, the picture is neither the photo nor grey.
	changed := 0
	for y := 0; y < 232; y += 8 {
		for x := 70; x < 280; x += 8 {
			r, g, b, _ := img.At(x, y).RGBA()
			pr, pg, pb, _ := photo.At(x, y).RGBA()
			if r != pr || g != pg || b != pb {
				changed++
			}
		}
	}
	if changed < 500 {
		t.Errorf("only %d sampled pixels inside the crop changed", changed)
	}
}

// TestExplainJSONFailed checks the record of an input that failed, between
// good ones, as predict writes it.
func TestExplainJSONFailed(t *testing.T) {
	ios, out, _ := testIO("")
	coffee := filepath.Join(photosDir, "coffee.png")
	opts := &explainOptions{IO: ios, Format: "json", Opacity: 0.5, Net: testNet(), Inputs: []string{coffee, "nope.png", coffee}}
	if err := runExplain(context.Background(), opts); err == nil {
		t.Fatal("no error for a missing input")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), out)
	}
	var rec failedRecord
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil || rec.File != "nope.png" || !strings.Contains(rec.Error, "nope.png") {
		t.Fatalf("second line %s, want nope.png's error record", lines[1])
	}
}

// TestExplainStdinAndNames explains standard input and two files of the
// same name from different folders: stdin.cam.png, then unique names.
func TestExplainStdinAndNames(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{"a", "b"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(photosDir, "coffee.png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, sub, "photo.png"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(photosDir, "rocket.lossy.webp"))
	if err != nil {
		t.Fatal(err)
	}
	ios, _, errOut := testIO(string(raw))
	out := filepath.Join(dir, "maps")
	opts := &explainOptions{IO: ios, Format: "png", Opacity: 0.5, Net: testNet(), Output: out,
		Inputs: []string{"-", filepath.Join(dir, "a"), filepath.Join(dir, "b")}}
	if err := runExplain(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	for _, name := range []string{"stdin.cam.png", "photo.cam.png", "photo-2.cam.png"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("no %s: %v", name, err)
		}
	}
}

func TestExplainSingleOutput(t *testing.T) {
	out := filepath.Join(t.TempDir(), "why.png")
	ios, _, errOut := testIO("")
	opts := &explainOptions{IO: ios, Format: "png", Opacity: 0.5, Net: testNet(), Output: out,
		Inputs: []string{filepath.Join(photosDir, "coffee.png")}}
	if err := runExplain(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		t.Fatalf("no picture at -o: %v", err)
	}
}

// TestBeyondUsage checks the usage errors (exit status 2) of explain,
// embed and train-head.
func TestBeyondUsage(t *testing.T) {
	photo := filepath.Join(photosDir, "coffee.png")
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"format", []string{"explain", "-w", tinyWeights, "--format", "gif", photo}, "--format"},
		{"opacity", []string{"explain", "-w", tinyWeights, "--opacity", "2", photo}, "--opacity"},
		{"class label", []string{"explain", "-w", tinyWeights, "--class", "zebra", photo}, "zebra"},
		{"class index", []string{"explain", "-w", tinyWeights, "--class", "10", photo}, "outside [0, 10)"},
		{"embed extension", []string{"embed", "-w", tinyWeights, "-o", "x.txt", photo}, "unknown embedding format"},
		{"embed format with -o", []string{"embed", "-w", tinyWeights, "-o", "x.npy", "-f", "csv", photo}, "--format"},
		{"embed format", []string{"embed", "-w", tinyWeights, "-f", "xml", photo}, "--format"},
		{"similar topk", []string{"embed", "-w", tinyWeights, "--similar", photo, "-k", "0", photo}, "--topk"},
		{"train-head no -o", []string{"train-head", "-w", tinyWeights, photosDir}, "-o MODEL.safetensors is required"},
		{"train-head extension", []string{"train-head", "-w", tinyWeights, "-o", "m.pth", photosDir}, "name it .safetensors"},
		{"train-head val", []string{"train-head", "-w", tinyWeights, "-o", "m.safetensors", "--val", "1", photosDir}, "--val"},
		{"train-head val and val-dir", []string{"train-head", "-w", tinyWeights, "-o", "m.safetensors", "--val", "0.3", "--val-dir", photosDir, photosDir}, "give one"},
		{"train-head l2", []string{"train-head", "-w", tinyWeights, "-o", "m.safetensors", "--l2", "-1", photosDir}, "--l2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("RES2NET_HOME", t.TempDir())
			ios, _, errOut := testIO("")
			if code := execute(context.Background(), ios, tt.args); code != 2 || !strings.Contains(errOut.String(), tt.err) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errOut, tt.err)
			}
		})
	}
}

// TestOverlayPhotoDownscales checks that a photo beyond maxOverlayPixels is
// drawn smaller, with the network's window scaled with it, and that a
// small one is kept as it is.
func TestOverlayPhotoDownscales(t *testing.T) {
	pre := preprocess.DefaultOptions()
	big := image.NewNRGBA(image.Rect(0, 0, 4400, 4000))
	photo, win := overlayPhoto(big, pre)
	b := photo.Bounds()
	if b.Dx()*b.Dy() > maxOverlayPixels || b.Dx() < 4000 {
		t.Fatalf("downscaled to %v", b)
	}
	// Resize(232) makes it 255x232 (torchvision truncates 255.2), and
	// CenterCrop(224) starts at (16, 4) (round half to even of 15.5 and
	// 4): in the photo's pixels (16, 4) x (4400/255, 4000/232), 224 wide
	// and high, scaled with the picture.
	sx, sy := float64(b.Dx())/4400, float64(b.Dy())/4000
	fx, fy := 4400.0/255, 4000.0/232
	want := cam.Window{X: 16 * fx * sx, Y: 4 * fy * sy, W: 224 * fx * sx, H: 224 * fy * sy}
	if math.Abs(win.X-want.X) > 1 || math.Abs(win.Y-want.Y) > 1 || math.Abs(win.W-want.W) > 1 || math.Abs(win.H-want.H) > 1 {
		t.Fatalf("window %+v for a picture of %v, want %+v", win, b, want)
	}
	small := image.NewNRGBA(image.Rect(0, 0, 348, 232))
	if p, _ := overlayPhoto(small, pre); p != small {
		t.Fatal("a small photo was copied")
	}
}
