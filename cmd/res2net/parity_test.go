package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/res2net/res2net/internal/npy"
)

// TestParityPhotos classifies every test photo from its file with the
// full-size seeded checkpoint of `make parity` and compares the ranking with
// PyTorch's on torchvision's tensor: top-1 identical on every photo, top-5
// order identical on lossless formats.
func TestParityPhotos(t *testing.T) {
	dir := os.Getenv("RES2NET_PARITY_DIR")
	if dir == "" {
		t.Skip("RES2NET_PARITY_DIR not set; run `make parity`")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "photos.json"))
	if err != nil {
		t.Fatal(err)
	}
	var order struct{ Files []string }
	if err := json.Unmarshal(raw, &order); err != nil {
		t.Fatal(err)
	}
	logits, err := npy.Read(filepath.Join(dir, "photos.logits.npy"))
	if err != nil {
		t.Fatal(err)
	}
	lossless := map[string]bool{}
	for _, p := range readManifest(t) {
		lossless[p.File] = p.Lossless
	}
	ios, out, errOut := testIO("")
	opts := &predictOptions{IO: ios, TopK: 5, Weights: filepath.Join(dir, "full.pth"), Format: "json",
		BatchSize: 4, Threads: 2, MaxPixels: 1 << 27, NoOrient: true}
	for _, f := range order.Files {
		opts.Inputs = append(opts.Inputs, filepath.Join(photosDir, f))
	}
	if err := runPredict(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	classes := logits.Shape[1]
	dec := json.NewDecoder(out)
	for i, f := range order.Files {
		var r result
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		want := rankLogits(logits.Data[i*classes : (i+1)*classes])
		n := 1
		if lossless[f] {
			n = 5
		}
		for k := 0; k < n; k++ {
			if r.Predictions[k].Index != want[k] {
				t.Errorf("%s: rank %d is class %d, PyTorch says %d", f, k+1, r.Predictions[k].Index, want[k])
			}
		}
		t.Logf("%s: top-%d matches PyTorch (%s %.4f)", f, n, r.Predictions[0].Label, r.Predictions[0].Probability)
	}
}
