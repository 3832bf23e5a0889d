package packcache

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPrune: storing a file removes those of checkpoints deleted or
// changed since, damaged files and old leftovers of interrupted stores,
// and keeps at most maxFiles, the newest.
func TestPrune(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	net := newNet(t, probeConfig(), 3)
	store := func(name, content string) (string, Identity) {
		t.Helper()
		dir := filepath.Join(t.TempDir(), name)
		os.Mkdir(dir, 0o755)
		path, id := checkpointFile(t, dir, content)
		if err := c.Store(id, net, Info{}); err != nil {
			t.Fatal(err)
		}
		return path, id
	}
	exists := func(path string) bool { _, err := os.Stat(path); return err == nil }

	gone, goneID := store("gone", "a")
	changed, changedID := store("changed", "b")
	_, damagedID := store("damaged", "c")
	_, keptID := store("kept", "d")
	os.Remove(gone)
	time.Sleep(20 * time.Millisecond) // past the timestamp resolution
	os.WriteFile(changed, []byte("B"), 0o644)
	os.Truncate(c.File(damagedID, 0), 100)
	oldTmp := filepath.Join(c.Dir, ".tmp-1.pack")
	newTmp := filepath.Join(c.Dir, ".tmp-2.pack")
	os.WriteFile(oldTmp, nil, 0o644)
	os.WriteFile(newTmp, nil, 0o644)
	os.Chtimes(oldTmp, time.Now(), time.Now().Add(-2*tmpAge))
	other := filepath.Join(c.Dir, "notes.txt")
	os.WriteFile(other, nil, 0o644)

	_, newID := store("new", "e")
	for _, tc := range []struct {
		path string
		want bool
	}{
		{c.File(goneID, 0), false}, {c.File(changedID, 0), false}, {c.File(damagedID, 0), false},
		{oldTmp, false}, {newTmp, true}, {other, true},
		{c.File(keptID, 0), true}, {c.File(newID, 0), true},
	} {
		if exists(tc.path) != tc.want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(tc.path), !tc.want, tc.want)
		}
	}

	// Beyond maxFiles, the oldest go.
	var ids []Identity
	for i := range maxFiles + 2 {
		_, id := store(fmt.Sprintf("many%d", i), "f")
		ids = append(ids, id)
		time.Sleep(10 * time.Millisecond) // distinct modification times
	}
	files, _ := filepath.Glob(filepath.Join(c.Dir, "[^.]*.pack"))
	if len(files) != maxFiles {
		t.Errorf("%d cache files, want %d", len(files), maxFiles)
	}
	for i, id := range ids {
		if want := i >= len(ids)-maxFiles; exists(c.File(id, 0)) != want {
			t.Errorf("file %d of %d: exists %v, want %v", i, len(ids), !want, want)
		}
	}
}
