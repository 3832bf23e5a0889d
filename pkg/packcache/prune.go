package packcache

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	// maxFiles bounds the files a cache keeps, ~100 MB each for the
	// full-size network: runs on many checkpoints (temporary copies,
	// every variant) would otherwise fill the disk.
	maxFiles = 8
	// tmpAge is the age from which a temporary file is taken for the
	// leftover of an interrupted store.
	tmpAge     = time.Hour
	tmpPattern = ".tmp-*.pack" // os.CreateTemp's pattern in Store
)

// prune removes, after a store of the file keep, the files of checkpoints
// that are gone or have changed since, damaged files, leftovers of
// interrupted stores and, beyond maxFiles, the oldest. Removing a file
// another process has mapped is safe: its mapping stays. Errors are
// ignored: pruning only saves space.
func (c *Cache) prune(keep string) {
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		return
	}
	type kept struct {
		path string
		mod  time.Time
	}
	var files []kept
	for _, e := range entries {
		path := filepath.Join(c.Dir, e.Name())
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || path == keep {
			continue
		}
		if ok, _ := filepath.Match(tmpPattern, e.Name()); ok {
			if time.Since(fi.ModTime()) > tmpAge {
				os.Remove(path)
			}
			continue
		}
		if !strings.HasSuffix(e.Name(), ".pack") {
			continue
		}
		if stale(path) {
			os.Remove(path)
			continue
		}
		files = append(files, kept{path, fi.ModTime()})
	}
	slices.SortFunc(files, func(a, b kept) int { return a.mod.Compare(b.mod) })
	for len(files) > maxFiles-1 { // keep is the newest
		os.Remove(files[0].path)
		files = files[1:]
	}
}

// stale reports whether the cache file at path is damaged or belongs to a
// checkpoint that is gone or has changed. A file packed by another build
// is not stale: that build may still run.
func stale(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	h, _, err := readHeader(f)
	if err != nil {
		return true
	}
	id, err := Identify(h.Checkpoint.Path)
	return err != nil || !h.Checkpoint.same(id)
}
