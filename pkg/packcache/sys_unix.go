//go:build unix

package packcache

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// fileIdentity stats the file at path.
func fileIdentity(path string) (Identity, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Identity{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return Identity{
		Size:       st.Size,
		ModTime:    unix.TimespecToNsec(st.Mtim),
		ChangeTime: unix.TimespecToNsec(st.Ctim),
		Device:     uint64(st.Dev),
		Inode:      uint64(st.Ino),
	}, nil
}

// mapFile maps the first size bytes of f read-only. The pages are shared
// with the page cache, so runs at the same time hold the weights once, and
// a write to them is a fault rather than a silent change. They are faulted
// in by verify's goroutines, in parallel: MAP_POPULATE, one serial pass in
// the kernel, measured no faster.
func mapFile(f *os.File, size int64) ([]byte, error) {
	if size == 0 {
		return nil, errors.New("empty file")
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("%d bytes do not fit in memory", size)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	return data, nil
}

func unmap(data []byte) { unix.Munmap(data) }
