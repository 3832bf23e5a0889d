package npy

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/res2net/res2net/pkg/ops"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name  string
		shape []int
		tuple string // as numpy.save writes it
	}{
		{"matrix", []int{2, 3}, "2, 3"},
		{"vector", []int{6}, "6,"},
		{"empty", []int{0, 4}, "0, 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := make([]float32, ops.NumElements(tt.shape))
			for i := range data {
				data[i] = float32(i) - 1.5
			}
			var buf bytes.Buffer
			if err := Write(&buf, data, tt.shape...); err != nil {
				t.Fatal(err)
			}
			want := header("<f4", tt.tuple)
			for _, v := range data {
				want = binary.LittleEndian.AppendUint32(want, math.Float32bits(v))
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("Write wrote\n%q\nwant\n%q", buf.Bytes(), want)
			}
			path := filepath.Join(t.TempDir(), "a.npy")
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			back, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			for i := range data {
				if back.Data[i] != data[i] {
					t.Fatalf("read back %v, want %v", back.Data, data)
				}
			}
		})
	}
}

func TestWriteShapeMismatch(t *testing.T) {
	if err := Write(&bytes.Buffer{}, []float32{1, 2}, 3); err == nil {
		t.Fatal("no error for 2 values of shape 3")
	}
}
