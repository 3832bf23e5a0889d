package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/res2net/res2net/internal/paritytest"
	"github.com/res2net/res2net/pkg/packcache"
)

// predictWithHome runs the binary's predict on one photo with its cache in
// home and returns the JSON records and the peak RSS in KiB.
func predictWithHome(t *testing.T, bin, weights, home string) (string, int64) {
	t.Helper()
	cmd := exec.Command(bin, "predict", "--weights", weights, "--format", "json", "--topk", "10",
		filepath.Join(photosDir, "astronaut.jpg"))
	cmd.Env = append(os.Environ(), "RES2NET_HOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, rss, err := runPeakRSS(t, cmd)
	if err != nil {
		t.Fatalf("predict: %v\n%s", err, stderr.Bytes())
	}
	return string(out), rss
}

// packedFiles lists the files of home's packed-weight cache.
func packedFiles(t *testing.T, home string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(home, packedDir, "*"))
	hidden, _ := filepath.Glob(filepath.Join(home, packedDir, ".*"))
	return append(files, hidden...)
}

// warmCache runs predict with home until it holds the cache file of
// weights (a checkpoint changed within packcache.DefaultMinAge is not
// cached) and returns the records.
func warmCache(t *testing.T, bin, weights, home string) string {
	t.Helper()
	out, _ := predictWithHome(t, bin, weights, home)
	if len(packedFiles(t, home)) == 0 {
		time.Sleep(packcache.DefaultMinAge)
		out, _ = predictWithHome(t, bin, weights, home)
	}
	if files := packedFiles(t, home); len(files) != 1 {
		t.Fatalf("cache holds %q, want one file", files)
	}
	return out
}

// TestBinaryPackCache: predict processes run at the same time on an empty
// cache, then with the cache in place, then with the cache file damaged,
// all print the records of a run without a cache; the cache ends with one
// file, the same bytes as after its first writing.
func TestBinaryPackCache(t *testing.T) {
	bin := binary(t)
	// A home under a file holds no cache, even for root: the uncached path.
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	want, _ := predictWithHome(t, bin, tinyWeights, filepath.Join(notDir, "home"))

	home := t.TempDir()
	if got := warmCache(t, bin, tinyWeights, home); got != want {
		t.Fatalf("first run:\n%s\nwant\n%s", got, want)
	}
	file := packedFiles(t, home)[0]
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}

	concurrent := t.TempDir()
	var wg sync.WaitGroup
	outs := make([]string, 4)
	for i := range outs {
		wg.Go(func() {
			cmd := exec.Command(bin, "predict", "--weights", tinyWeights, "--format", "json", "--topk", "10",
				filepath.Join(photosDir, "astronaut.jpg"))
			cmd.Env = append(os.Environ(), "RES2NET_HOME="+concurrent)
			out, _ := cmd.Output()
			outs[i] = string(out)
		})
	}
	wg.Wait()
	for i, out := range outs {
		if out != want {
			t.Errorf("concurrent run %d:\n%s\nwant\n%s", i, out, want)
		}
	}
	if files := packedFiles(t, concurrent); len(files) > 1 {
		t.Errorf("after concurrent runs the cache holds %q, want at most one file", files)
	}

	if got, _ := predictWithHome(t, bin, tinyWeights, home); got != want {
		t.Errorf("cache in place:\n%s\nwant\n%s", got, want)
	}
	damaged := bytes.Clone(good)
	damaged[len(damaged)-8] ^= 0x01
	os.WriteFile(file, damaged, 0o644)
	if got, _ := predictWithHome(t, bin, tinyWeights, home); got != want {
		t.Errorf("cache damaged:\n%s\nwant\n%s", got, want)
	}
	if repaired, _ := os.ReadFile(file); !bytes.Equal(repaired, good) {
		t.Error("the damaged cache file was not rewritten")
	}
}

// maxStartupRSS is the bound on a one-photo predict's peak memory
// with the cache in place.
const maxStartupRSS = 150 << 10 // KiB

// TestParityStartupMemory: with the full-size checkpoint of `make parity`,
// predict on one photo with its cache in place stays within
// maxStartupRSS and prints what the first run printed.
func TestParityStartupMemory(t *testing.T) {
	dir := paritytest.Dir(t)
	bin := binary(t)
	full := filepath.Join(dir, "full.pth")
	home := t.TempDir()
	want := warmCache(t, bin, full, home)
	got, rss := predictWithHome(t, bin, full, home)
	t.Logf("full-size checkpoint, one photo, cache in place: peak RSS %d KiB", rss)
	if got != want {
		t.Errorf("cache in place:\n%s\nwant\n%s", got, want)
	}
	if rss > maxStartupRSS {
		t.Errorf("peak RSS %d KiB, want at most %d KiB", rss, maxStartupRSS)
	}
}
