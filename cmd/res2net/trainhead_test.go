package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/disintegration/imaging"
	"github.com/res2net/res2net/pkg/checkpoint"
	"github.com/res2net/res2net/pkg/classify"
)

// classPhotos are the shipped photos the labelled folders are made from,
// by class name.
var classPhotos = map[string]string{
	"astronaut": "astronaut.jpg",
	"cat":       "chelsea.palette.png",
	"coffee":    "coffee.png",
}

// makeLabelled writes n augmented views of each class photo under
// dir/<class>/: random crops of 55-90% of each side, half of them flipped,
// resized to a shorter side of 150-300 pixels, as JPEG or PNG.
func makeLabelled(t *testing.T, dir string, n int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, class := range slices.Sorted(maps.Keys(classPhotos)) {
		file := classPhotos[class]
		src, err := imaging.Open(filepath.Join(photosDir, file))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, class), 0o755); err != nil {
			t.Fatal(err)
		}
		b := src.Bounds()
		for i := range n {
			w := int(float64(b.Dx()) * (0.55 + 0.35*rng.Float64()))
			h := int(float64(b.Dy()) * (0.55 + 0.35*rng.Float64()))
			x0, y0 := rng.IntN(b.Dx()-w+1), rng.IntN(b.Dy()-h+1)
			var img image.Image = imaging.Crop(src, image.Rect(x0, y0, x0+w, y0+h))
			if i%2 == 1 {
				img = imaging.FlipH(img)
			}
			side := 150 + rng.IntN(151)
			if w < h {
				img = imaging.Resize(img, side, 0, imaging.Lanczos)
			} else {
				img = imaging.Resize(img, 0, side, imaging.Lanczos)
			}
			ext := []string{".jpg", ".png"}[i%2]
			if err := imaging.Save(img, filepath.Join(dir, class, fmt.Sprintf("%s-%02d%s", class, i, ext))); err != nil {
				t.Fatal(err)
			}
		}
	}
}

var accuracyRE = regexp.MustCompile(`validation accuracy: +([0-9.]+)% \((\d+) images\)`)

// TestTrainHeadThenPredict fits a head for three classes made from shipped
// photos, checks the validation accuracy it reports, then classifies fresh
// views of the photos with predict --weights on the written checkpoint,
// which must name the classes by their folders; a second run takes every
// feature from the cache.
func TestTrainHeadThenPredict(t *testing.T) {
	t.Setenv("RES2NET_HOME", t.TempDir())
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	makeLabelled(t, data, 15, 1)
	// An unreadable file is named and skipped.
	if err := os.WriteFile(filepath.Join(data, "cat", "broken.jpg"), []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "pets.safetensors")
	ios, stdout, errOut := testIO("")
	opts := &trainHeadOptions{IO: ios, DataDir: data, Output: out, Val: 0.2, L2: defaultL2, Seed: 1, MaxIter: 500, Net: testNet()}
	if err := runTrainHead(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(errOut.String(), "broken.jpg") {
		t.Errorf("the unreadable file is not reported: %q", errOut)
	}
	m := accuracyRE.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no validation accuracy in\n%s", stdout)
	}
	acc, _ := strconv.ParseFloat(m[1], 64)
	if n, _ := strconv.Atoi(m[2]); n != 9 || acc < 100 {
		t.Errorf("validation accuracy %v%% on %s images, want 100%% on 9 (3 of 15 per class)\n%s", acc, m[2], stdout)
	}
	if !strings.Contains(stdout.String(), "confusion matrix") || !strings.Contains(stdout.String(), "(0 from the cache)") {
		t.Errorf("report:\n%s", stdout)
	}

	// The checkpoint describes itself.
	ck, err := checkpoint.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	if err := json.Unmarshal([]byte(ck.Metadata[classify.MetaLabels]), &labels); err != nil || strings.Join(labels, ",") != "astronaut,cat,coffee" {
		t.Fatalf("labels in the metadata: %q (%v)", ck.Metadata[classify.MetaLabels], err)
	}
	if w := ck.Tensors["head.weight"]; w == nil || w.Shape[0] != 3 {
		t.Fatalf("head.weight %v, want 3 rows", w)
	}

	// predict --weights on new views: the folders' names, and right.
	fresh := filepath.Join(dir, "fresh")
	makeLabelled(t, fresh, 4, 99)
	ios, stdout, errOut = testIO("")
	popts := &predictOptions{IO: ios, Inputs: []string{fresh}, TopK: 1, Format: "json",
		Net: netFlags{Model: modelFlags{Weights: out}, Run: runFlags{BatchSize: 4, Threads: 2}, Transform: transformFlags{NoOrient: true}, Quiet: true}}
	if err := runPredict(context.Background(), popts); err != nil {
		t.Fatalf("predict: %v\n%s", err, errOut)
	}
	dec := json.NewDecoder(stdout)
	right, total := 0, 0
	for dec.More() {
		var r classify.Record
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		want := filepath.Base(filepath.Dir(r.File))
		if r.Predictions[0].Label == want {
			right++
		}
		total++
	}
	if total != 12 || right < 11 {
		t.Errorf("predict got %d of %d fresh views right, want at least 11 of 12", right, total)
	}

	// Again with another --l2: every feature from the cache.
	ios, stdout, errOut = testIO("")
	opts.IO, opts.L2 = ios, 0.1
	if err := runTrainHead(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(stdout.String(), "45 images (45 from the cache)") {
		t.Errorf("second run did not use the cache:\n%s", stdout)
	}
}

// TestTrainHeadDeterministic fits twice with one seed and once with
// another: the same seed writes the same bytes.
func TestTrainHeadDeterministic(t *testing.T) {
	t.Setenv("RES2NET_HOME", t.TempDir())
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	makeLabelled(t, data, 6, 3)
	run := func(name string, seed uint64) []byte {
		ios, _, errOut := testIO("")
		out := filepath.Join(dir, name)
		opts := &trainHeadOptions{IO: ios, DataDir: data, Output: out, Val: 0.34, L2: defaultL2, Seed: seed, MaxIter: 500, Net: testNet()}
		if err := runTrainHead(context.Background(), opts); err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := run("a.safetensors", 5), run("b.safetensors", 5), run("c.safetensors", 6)
	if string(a) != string(b) {
		t.Error("the same seed wrote different checkpoints")
	}
	if string(a) == string(c) {
		t.Error("another seed (another split) wrote the same checkpoint")
	}
}

func TestTrainHeadValDir(t *testing.T) {
	t.Setenv("RES2NET_HOME", t.TempDir())
	dir := t.TempDir()
	makeLabelled(t, filepath.Join(dir, "train"), 8, 1)
	makeLabelled(t, filepath.Join(dir, "val"), 3, 2)
	ios, stdout, errOut := testIO("")
	opts := &trainHeadOptions{IO: ios, DataDir: filepath.Join(dir, "train"), ValDir: filepath.Join(dir, "val"),
		Output: filepath.Join(dir, "m.safetensors"), L2: defaultL2, MaxIter: 500, Net: testNet()}
	if err := runTrainHead(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if m := accuracyRE.FindStringSubmatch(stdout.String()); m == nil || m[2] != "9" {
		t.Errorf("want validation on the 9 --val-dir images:\n%s", stdout)
	}
	if !strings.Contains(stdout.String(), "(24 images)") {
		t.Errorf("want training on all 24 images:\n%s", stdout)
	}
}

// TestTrainHeadBadData checks the errors for data that cannot train a
// classifier.
func TestTrainHeadBadData(t *testing.T) {
	t.Setenv("RES2NET_HOME", t.TempDir())
	photo, err := os.ReadFile(filepath.Join(photosDir, "coffee.png"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		files map[string][]byte // path under the data folder -> content
		val   map[string][]byte
		want  string
	}{
		{"one class", map[string][]byte{"a/1.png": photo}, nil, "1 class folders, need at least 2"},
		{"no classes", map[string][]byte{"loose.png": photo}, nil, "0 class folders"},
		{"empty class", map[string][]byte{"a/1.png": photo, "b/notes.txt": []byte("x")}, nil, `class "b"`},
		{"unreadable class", map[string][]byte{"a/1.png": photo, "b/1.png": []byte("junk")}, nil, `class "b": none of its images could be read`},
		{"unknown val class", map[string][]byte{"a/1.png": photo, "b/1.png": photo}, map[string][]byte{"c/1.png": photo}, `class "c" is not among the training classes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(root string, files map[string][]byte) {
				for name, b := range files {
					p := filepath.Join(root, name)
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(p, b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			write(filepath.Join(dir, "data"), tt.files)
			opts := &trainHeadOptions{DataDir: filepath.Join(dir, "data"), Output: filepath.Join(dir, "m.safetensors"), Val: 0.2, L2: 1, MaxIter: 10, Net: testNet()}
			if tt.val != nil {
				write(filepath.Join(dir, "val"), tt.val)
				opts.ValDir = filepath.Join(dir, "val")
			}
			ios, _, _ := testIO("")
			opts.IO = ios
			err := runTrainHead(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if _, err := os.Stat(opts.Output); err == nil {
				t.Error("a checkpoint was written")
			}
		})
	}
}
