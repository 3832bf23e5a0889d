package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/res2net/res2net/internal/npy"
	"github.com/res2net/res2net/pkg/classify"
	"github.com/res2net/res2net/pkg/ops"
)

const (
	tinyWeights = "../../testdata/tiny/tiny_legacy.pth"
	photosDir   = "../../testdata/photos"
)

// testIO returns streams backed by buffers, with stdin reading in.
func testIO(in string) (*ioStreams, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return &ioStreams{In: strings.NewReader(in), Out: &out, ErrOut: &errOut}, &out, &errOut
}

// photo is one entry of testdata/photos/manifest.json.
type photo struct {
	File   string `json:"file"`
	Logits string `json:"logits"`
	EXIF   *int   `json:"exif_orientation"`
}

func readManifest(t *testing.T) []photo {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(photosDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Files []photo }
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m.Files
}

// rankLogits returns class indices by decreasing logit.
func rankLogits(logits []float32) []int {
	return ops.TopK(logits, len(logits))
}

func TestExecuteExitCodes(t *testing.T) {
	t.Setenv("RES2NET_HOME", t.TempDir())
	photo := filepath.Join(photosDir, "coffee.png")
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"version", []string{"version"}, 0, ""},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"unknown flag", []string{"predict", "--nope", photo}, 2, "unknown flag"},
		{"no images", []string{"predict"}, 2, "requires at least 1 image"},
		{"bad topk", []string{"predict", "--topk", "0", photo}, 2, "--topk"},
		{"bad format", []string{"predict", "--format", "xml", photo}, 2, "--format"},
		{"bad batch", []string{"predict", "-b", "0", photo}, 2, "--batch-size"},
		{"bad sha", []string{"fetch", "--sha256", "xyz"}, 2, "--sha256"},
		{"inspect format", []string{"inspect", "--format", "yaml"}, 2, "--format"},
		{"offline without cache", []string{"predict", "--offline", photo}, 1, "no cached checkpoint"},
		{"missing weights", []string{"predict", "--weights", "nope.pth", photo}, 1, "nope.pth"},
		{"good", []string{"predict", "--weights", tinyWeights, photo}, 0, ""},
		{"all CPUs", []string{"predict", "--weights", tinyWeights, "--threads", "0", photo}, 0, ""},
		{"negative threads", []string{"predict", "--threads", "-1", photo}, 2, "--threads"},
		{"precision", []string{"predict", "--precision", "fp8", photo}, 2, "--precision"},
		{"bf16", []string{"predict", "--weights", tinyWeights, "--precision", "bf16", photo}, 0, ""},
		{"unknown model", []string{"predict", "--model", "resnet9000", photo}, 2, `unknown model "resnet9000"`},
		{"bad shard", []string{"predict", "--shard", "4/4", photo}, 2, "--shard"},
		{"resume without -o", []string{"predict", "--resume", photo}, 2, "--resume needs -o"},
		{"resume text", []string{"predict", "--resume", "-o", "x.txt", photo}, 2, "--resume needs JSON or CSV"},
		{"two stdins", []string{"predict", "--files-from", "-", "-"}, 2, "both read standard input"},
		{"crop too large", []string{"predict", "--crop", "100000", photo}, 2, "--resize/--crop"},
		{"labels count", []string{"predict", "--weights", tinyWeights, "--labels", photo, photo}, 1, "--labels"},
		{"did you mean", []string{"predcit", photo}, 2, "Did you mean this?\n\tpredict"},
		{"completion tcsh", []string{"completion", "tcsh"}, 2, `unsupported shell "tcsh"`},
		{"inspect mismatch", []string{"inspect", "--weights", "../../pkg/checkpoint/testdata/net_zip.pth"}, 1, ""}, // loads, but is no Res2Net
		{"stdin named", []string{"predict", "--weights", tinyWeights, "-"}, 1, "res2net: decode <stdin>: "},
		{"bad file among good", []string{"predict", "--weights", tinyWeights, photo, "missing.jpg"}, 1, "missing.jpg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, errOut := testIO("")
			if code := execute(context.Background(), ios, tt.args); code != tt.code {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, tt.code, errOut)
			}
			if !strings.Contains(errOut.String(), tt.err) {
				t.Errorf("stderr %q does not mention %q", errOut, tt.err)
			}
			if strings.Contains(errOut.String(), "goroutine") {
				t.Errorf("stderr has a stack trace:\n%s", errOut)
			}
		})
	}
}

// TestPredictPhotos classifies every test photo with the tiny checkpoint and
// checks the ranking against PyTorch's logits on torchvision's tensor.
func TestPredictPhotos(t *testing.T) {
	photos := readManifest(t)
	ios, out, errOut := testIO("")
	opts := &predictOptions{IO: ios, TopK: 10, Format: "json",
		Net: netFlags{Model: modelFlags{Weights: tinyWeights}, Run: runFlags{BatchSize: 3, Threads: 2}, Transform: transformFlags{NoOrient: true}}}
	for _, p := range photos {
		opts.Inputs = append(opts.Inputs, filepath.Join(photosDir, p.File))
	}
	if err := runPredict(context.Background(), opts); err != nil {
		t.Fatalf("runPredict: %v\n%s", err, errOut)
	}
	dec := json.NewDecoder(out)
	for _, p := range photos {
		var r classify.Record
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("%s: %v", p.File, err)
		}
		if want := filepath.Join(photosDir, p.File); r.File != want {
			t.Fatalf("result for %s, want %s (input order)", r.File, want)
		}
		logits, err := npy.Read(filepath.Join(photosDir, p.Logits))
		if err != nil {
			t.Fatal(err)
		}
		want := rankLogits(logits.Data)
		tol := 1e-4 * math.Max(1, math.Abs(float64(logits.Data[want[0]])))
		// Decoding matches Pillow exactly in every format, so even lossy
		// files are held to the top-5 order.
		n := 5
		sum := 0.0
		for i, pr := range r.Predictions {
			sum += float64(pr.Probability)
			if i < n && pr.Index != want[i] {
				t.Errorf("%s: rank %d is class %d, PyTorch says %d", p.File, i+1, pr.Index, want[i])
			}
			if d := math.Abs(float64(pr.Logit) - float64(logits.Data[pr.Index])); d > tol {
				t.Errorf("%s: logit of class %d differs from PyTorch's by %.3g > %.3g", p.File, pr.Index, d, tol)
			}
		}
		if math.Abs(sum-1) > 1e-5 || len(r.Predictions) != 10 {
			t.Errorf("%s: %d predictions summing to %v", p.File, len(r.Predictions), sum)
		}
	}
}

func TestPredictFormats(t *testing.T) {
	png := filepath.Join(photosDir, "coffee.png")
	tests := []struct {
		format string
		topk   int
		want   []string
		lines  int
	}{
		{"text", 3, []string{png + "\n", "  1  ", "%\n"}, 4},
		{"csv", 2, []string{"file,rank,index,label,probability,logit,error\n", png + ",1,"}, 3},
		{"json", 20, []string{`"rank":10`, `"label":`, `"logit":`}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			ios, out, errOut := testIO("")
			opts := &predictOptions{IO: ios, Inputs: []string{png}, TopK: tt.topk,
				Format: tt.format, Net: netFlags{Model: modelFlags{Weights: tinyWeights}, Run: runFlags{BatchSize: 1, Threads: 1}}}
			if err := runPredict(context.Background(), opts); err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if n := strings.Count(out.String(), "\n"); n != tt.lines {
				t.Errorf("%d lines, want %d:\n%s", n, tt.lines, out)
			}
		})
	}
}

// TestPredictFolderAndStdin mixes a folder with good and bad images, a
// missing file and stdin: every good image is classified in input order and
// every bad one named on stderr.
func TestPredictFolderAndStdin(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(filepath.Join(photosDir, "coffee.png"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"a.png":           good,
		"b/c.png":         good,
		"b/broken.jpg":    []byte("this is text, not a JPEG"),
		"b/notes.txt":     []byte("skipped: not an image extension"),
		"d/empty.png":     nil,
		"e/f/g/h.jpeg":    good,
		"e/truncated.png": good[:100],
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ios, out, errOut := testIO(string(good))
	opts := &predictOptions{IO: ios, Inputs: []string{dir, filepath.Join(dir, "missing.png"), "-"}, TopK: 1, Format: "csv",
		Net: netFlags{Model: modelFlags{Weights: tinyWeights}, Run: runFlags{BatchSize: 2, Threads: 2}}}
	err = runPredict(context.Background(), opts)
	if err == nil {
		t.Fatal("runPredict succeeded with bad files")
	}
	// Every input is a row, in input order; the failed ones carry their error.
	rows, err := csv.NewReader(out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, row := range rows[1:] {
		got = append(got, fmt.Sprintf("%s ok=%v", strings.TrimPrefix(row[0], dir+"/"), row[6] == ""))
	}
	want := []string{"a.png ok=true", "b/broken.jpg ok=false", "b/c.png ok=true", "d/empty.png ok=false",
		"e/f/g/h.jpeg ok=true", "e/truncated.png ok=false", "missing.png ok=false", "<stdin> ok=true"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, bad := range []string{"broken.jpg", "empty.png", "truncated.png", "missing.png"} {
		if !strings.Contains(errOut.String(), bad) {
			t.Errorf("stderr does not name %s:\n%s", bad, errOut)
		}
	}
}

// TestPredictConcurrent runs predictions from several goroutines at once
// (under -race in CI): each gets the same answers as a lone run.
func TestPredictConcurrent(t *testing.T) {
	inputs := []string{filepath.Join(photosDir, "coffee.png"), filepath.Join(photosDir, "rocket.lossy.webp")}
	predict := func(threads int) (string, error) {
		ios, out, errOut := testIO("")
		opts := &predictOptions{IO: ios, Inputs: inputs, TopK: 3, Format: "json",
			Net: netFlags{Model: modelFlags{Weights: tinyWeights}, Run: runFlags{BatchSize: 2, Threads: threads}}}
		if err := runPredict(context.Background(), opts); err != nil {
			return "", fmt.Errorf("%v: %s", err, errOut)
		}
		return out.String(), nil
	}
	want, err := predict(1)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := predict(1 + i%2)
			if err == nil && got != want {
				err = fmt.Errorf("got\n%s\nwant\n%s", got, want)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
}

// TestPredictExtremeSizes classifies a 1x1 image and 1x5000 / 5000x1
// strips: the transform scales them up to the crop without failing.
func TestPredictExtremeSizes(t *testing.T) {
	dir := t.TempDir()
	var inputs []string
	for _, size := range [][2]int{{1, 1}, {1, 5000}, {5000, 1}} {
		img := image.NewNRGBA(image.Rect(0, 0, size[0], size[1]))
		for i := range img.Pix {
			img.Pix[i] = uint8(i * 7)
		}
		p := filepath.Join(dir, fmt.Sprintf("%dx%d.png", size[0], size[1]))
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
		inputs = append(inputs, p)
	}
	ios, out, errOut := testIO("")
	opts := &predictOptions{IO: ios, Inputs: inputs, TopK: 1, Format: "csv",
		Net: netFlags{Model: modelFlags{Weights: tinyWeights}, Run: runFlags{BatchSize: 8, Threads: 1}}}
	if err := runPredict(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if n := strings.Count(out.String(), "\n"); n != 1+len(inputs) {
		t.Errorf("%d lines, want %d:\n%s", n, 1+len(inputs), out)
	}
}

// TestPredictCachedDefault uses the checkpoint in the cache when no
// --weights is given, without any download.
func TestPredictCachedDefault(t *testing.T) {
	home := t.TempDir()
	t.Setenv("RES2NET_HOME", home)
	data, err := os.ReadFile(tinyWeights)
	if err != nil {
		t.Fatal(err)
	}
	// Published as the test's own entry: a cached file is used only once
	// it verifies.
	entry, _ := tinyEntry(t, "https://example.invalid/ckpt.pth")
	if err := os.WriteFile(filepath.Join(home, entry.File), data, 0o644); err != nil {
		t.Fatal(err)
	}
	ios, out, errOut := testIO("")
	opts := &predictOptions{IO: ios, Inputs: []string{filepath.Join(photosDir, "coffee.png")}, TopK: 1,
		Format: "text", Net: netFlags{Run: runFlags{BatchSize: 1, Threads: 1}, Model: modelFlags{Offline: true, Entry: &entry}}}
	if err := runPredict(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(out.String(), "coffee.png") || errOut.Len() != 0 {
		t.Errorf("stdout %q, stderr %q", out, errOut)
	}
}

// TestPredictSymlinkedFolder walks a folder given through a link, with or
// without a trailing slash, and reports paths under the name given.
func TestPredictSymlinkedFolder(t *testing.T) {
	dir := t.TempDir()
	photos, err := filepath.Abs(photosDir)
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(photos, link); err != nil {
		t.Fatal(err)
	}
	for _, arg := range []string{link, link + "/"} {
		ios, out, errOut := testIO("")
		opts := &predictOptions{IO: ios, Inputs: []string{arg}, TopK: 1, Format: "csv",
			Net: netFlags{Model: modelFlags{Weights: tinyWeights}, Run: runFlags{BatchSize: 8, Threads: 1}}}
		if err := runPredict(context.Background(), opts); err != nil {
			t.Fatalf("%s: %v\n%s", arg, err, errOut)
		}
		if !strings.Contains(out.String(), filepath.Join(link, "coffee.png")+",1,") {
			t.Errorf("%s: no row for link/coffee.png:\n%s", arg, out)
		}
	}
}

// TestExecuteInterrupted: a cancelled run (Ctrl-C) says so and exits 130.
func TestExecuteInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ios, _, errOut := testIO("")
	code := execute(ctx, ios, []string{"predict", "--weights", tinyWeights, filepath.Join(photosDir, "coffee.png")})
	if code != 130 || !strings.Contains(errOut.String(), "interrupted") {
		t.Errorf("exit %d, stderr %q; want 130 and interrupted", code, errOut)
	}
}

// TestPredictJSONNames checks that JSON records name inputs as they are,
// without HTML escapes (standard input is "<stdin>" as in errors and text).
func TestPredictJSONNames(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(photosDir, "coffee.png"))
	if err != nil {
		t.Fatal(err)
	}
	odd := filepath.Join(t.TempDir(), "a&b<c>.png")
	if err := os.WriteFile(odd, good, 0o644); err != nil {
		t.Fatal(err)
	}
	ios, out, _ := testIO(string(good))
	if err := runPredict(context.Background(), tinyPredict(ios, "json", "-", odd)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`{"file":"<stdin>",`, `{"file":"` + odd + `",`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}
