package preprocess

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary bytes through Decode and Transform, and Read,
// whose streamed resize must give the same tensor. Seeds are the format
// fixtures (plus testdata/fuzz/FuzzDecode); the pixel limit is small so
// that forged headers cannot make the fuzzer run out of memory.
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob("testdata/formats/*")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		if filepath.Ext(name) == ".npy" || filepath.Ext(name) == ".json" {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	opts := Options{Transform: Transform{Resize: 20, Crop: 16, Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.25, 0.25, 0.25}}, Orient: true, MaxPixels: 1 << 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := Decode(bytes.NewReader(data), opts)
		streamed, rerr := Read(bytes.NewReader(data), "fuzz", opts)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("Decode error %v, Read error %v", err, rerr)
		}
		if err != nil {
			// Decode turns decoder panics into errors; here they are bugs.
			if img != nil || strings.Contains(err.Error(), "panicked") {
				t.Fatal(err)
			}
			return
		}
		b := img.Bounds()
		if b.Empty() || int64(b.Dx())*int64(b.Dy()) > opts.MaxPixels {
			t.Fatalf("decoded size %v", b)
		}
		tensor := opts.Transform.Apply(img)
		if len(tensor.Data) != 3*16*16 {
			t.Fatalf("tensor shape %v", tensor.Shape)
		}
		for i, v := range streamed.Data {
			if v != tensor.Data[i] {
				t.Fatalf("Read differs from Apply(Decode) at %d: %v, %v", i, v, tensor.Data[i])
			}
		}
		for _, v := range tensor.Data {
			if math.IsNaN(float64(v)) || v < -2.01 || v > 2.01 {
				t.Fatalf("tensor value %v out of range", v)
			}
		}
	})
}
