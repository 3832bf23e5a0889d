package npy

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// header builds a version-1 .npy header padded as NumPy pads it.
func header(descr, shape string) []byte {
	h := "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + shape + "), }"
	pad := 64 - (10+len(h)+1)%64
	h += strings.Repeat(" ", pad%64) + "\n"
	out := []byte("\x93NUMPY\x01\x00")
	out = binary.LittleEndian.AppendUint16(out, uint16(len(h)))
	return append(out, h...)
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	raw := header("<f4", "2, 3")
	for i := 0; i < 6; i++ {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(i)/2))
	}
	path := filepath.Join(dir, "a.npy")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	tn, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(tn.Shape) != 2 || tn.Shape[0] != 2 || tn.Shape[1] != 3 || tn.Data[5] != 2.5 {
		t.Fatalf("got shape %v data %v", tn.Shape, tn.Data)
	}
	if _, _, err := ReadUint8(path); err == nil {
		t.Error("ReadUint8 accepted a float32 array")
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	tests := map[string][]byte{
		"empty":     nil,
		"text":      []byte("hello, this is not numpy"),
		"truncated": append(header("<f4", "4,"), 0, 0, 0, 0),
		"fortran":   []byte(strings.Replace(string(header("<f4", "0,")), "False", "True ", 1)),
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".npy")
			if err := os.WriteFile(path, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Read(path); err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("Read(%s) = %v, want an error naming the file", name, err)
			}
		})
	}
}
