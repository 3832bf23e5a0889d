package preprocess

import (
	"bytes"
	"image"
	"os"
	"testing"
)

// benchFile returns a photo fixture, preferring the larger shared photos.
func benchFile(b *testing.B, names ...string) []byte {
	for _, n := range names {
		if data, err := os.ReadFile(n); err == nil {
			return data
		}
	}
	b.Skip("no fixture among", names)
	return nil
}

func benchmarkDecode(b *testing.B, data []byte) {
	opts := DefaultOptions()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode(bytes.NewReader(data), opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeJPEG(b *testing.B) {
	benchmarkDecode(b, benchFile(b, "../../testdata/photos/astronaut.jpg", "testdata/formats/q90_420.jpg"))
}

func BenchmarkDecodeJPEGProgressive(b *testing.B) {
	benchmarkDecode(b, benchFile(b, "../../testdata/photos/astronaut.progressive.jpg", "testdata/formats/q75_420_progressive.jpg"))
}

func BenchmarkDecodePNG(b *testing.B) {
	benchmarkDecode(b, benchFile(b, "../../testdata/photos/coffee.png", "testdata/formats/rgb8.png"))
}

func BenchmarkDecodeWebPLossy(b *testing.B) {
	benchmarkDecode(b, benchFile(b, "../../testdata/photos/rocket.lossy.webp", "testdata/formats/lossy.webp"))
}

// BenchmarkTransform resizes a 12-megapixel image (4000x3000) to 309x232
// and crops 224x224, the typical cost per camera photo.
func BenchmarkTransform(b *testing.B) {
	img := pattern(4000, 3000)
	opts := DefaultOptions()
	for b.Loop() {
		opts.Transform.Apply(img)
	}
}

// BenchmarkTransformSmall upscales a 200x150 image.
func BenchmarkTransformSmall(b *testing.B) {
	var img image.Image = pattern(200, 150)
	opts := DefaultOptions()
	for b.Loop() {
		opts.Transform.Apply(img)
	}
}
