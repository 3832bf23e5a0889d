package paritytest

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/res2net/res2net/internal/npy"
)

// writeFixture writes photos.json listing files and logits.npy of shape.
func writeFixture(t *testing.T, files string, shape ...int) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "photos.json"), []byte(`{"files": `+files+`}`), 0o644); err != nil {
		t.Fatal(err)
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(i)
	}
	var b bytes.Buffer
	if err := npy.Write(&b, data, shape...); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "logits.npy"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReadPhotos(t *testing.T) {
	p := ReadPhotos(t, writeFixture(t, `["a.jpg", "b.png"]`, 2, 3), "logits.npy")
	if !slices.Equal(p.Files, []string{"a.jpg", "b.png"}) {
		t.Errorf("Files = %q", p.Files)
	}
	if got := p.Row(1); !slices.Equal(got, []float32{3, 4, 5}) {
		t.Errorf("Row(1) = %v, want [3 4 5]", got)
	}
}

// TestReadPhotosRefuses: fixtures whose parts disagree are an error naming
// the file, not a panic in Row.
func TestReadPhotosRefuses(t *testing.T) {
	tests := []struct {
		name, files string
		shape       []int
		want        string
	}{
		{"fewer rows", `["a.jpg", "b.png"]`, []int{1, 3}, "logits.npy: shape [1 3], want 2 rows"},
		{"one dimension", `["a.jpg"]`, []int{3}, "logits.npy: shape [3], want 1 rows"},
		{"bad json", `["a.jpg"`, []int{1, 3}, "photos.json: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readPhotos(writeFixture(t, tt.files, tt.shape...), "logits.npy")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
