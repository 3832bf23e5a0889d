//go:build !unix

package packcache

import (
	"io"
	"os"
)

// fileIdentity stats the file at path: its size and time.
func fileIdentity(path string) (Identity, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Identity{}, err
	}
	return Identity{Size: fi.Size(), ModTime: fi.ModTime().UnixNano()}, nil
}

// mapFile reads the first size bytes of f into memory that stays
// allocated, where there is no mmap.
func mapFile(f *os.File, size int64) ([]byte, error) {
	// float32 memory, so the values are aligned as in a mapping.
	v := make([]float32, (size+3)/4)
	b := valueBytes(v)[:size]
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}

func unmap([]byte) {}
