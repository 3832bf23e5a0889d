package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/res2net/res2net/pkg/download"
	"github.com/res2net/res2net/pkg/registry"
)

// serveFile serves body at /ckpt.pth and counts the requests.
func serveFile(t *testing.T, body []byte) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.ServeContent(w, r, "ckpt.pth", time.Time{}, strings.NewReader(string(body)))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestFetch(t *testing.T) {
	body, err := os.ReadFile(tinyWeights)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	srv, hits := serveFile(t, body)
	home := t.TempDir()
	t.Setenv("RES2NET_HOME", home)

	fetch := func(sha string, force bool) (string, error) {
		ios, out, _ := testIO("")
		err := runFetch(context.Background(), &fetchOptions{IO: ios, URL: srv.URL + "/ckpt.pth", SHA256: sha, Force: force})
		return strings.TrimSpace(out.String()), err
	}
	good := hex.EncodeToString(sum[:])
	path, err := fetch(good, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, "ckpt.pth"); path != want {
		t.Errorf("printed %q, want %q", path, want)
	}
	if got, _ := os.ReadFile(path); string(got) != string(body) {
		t.Error("cached file differs from the served one")
	}
	before := hits.Load()
	if _, err := fetch(good, false); err != nil || hits.Load() != before {
		t.Errorf("second fetch: err %v, %d new requests; want the cached copy", err, hits.Load()-before)
	}
	if _, err := fetch(good, true); err != nil || hits.Load() == before {
		t.Errorf("--force: err %v, no new request", err)
	}

	// The fetched checkpoint is what predict then uses.
	ios, out, errOut := testIO("")
	p := &predictOptions{IO: ios, Inputs: []string{filepath.Join(photosDir, "coffee.png")}, TopK: 1,
		Model: modelFlags{Weights: path}, Format: "text", Run: runFlags{BatchSize: 1, Threads: 1}}
	if err := runPredict(context.Background(), p); err != nil || !strings.Contains(out.String(), "coffee.png") {
		t.Errorf("predict with the fetched file: %v\n%s%s", err, out, errOut)
	}

	wrong := strings.Repeat("0", 64)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(wrong, false); err == nil || !strings.Contains(err.Error(), wrong) {
		t.Errorf("wrong sha256: %v, want an error naming it", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("a file that failed verification is at the final path")
	}
}

// TestPredictFetchesDefault: without --weights and with nothing cached,
// predict announces the download, fetches the default checkpoint and uses it.
func TestPredictFetchesDefault(t *testing.T) {
	body, err := os.ReadFile(tinyWeights)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	srv, hits := serveFile(t, body)
	saved := defaultSource
	defaultSource = download.Source{URL: srv.URL + "/ckpt.pth", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(body))}
	t.Cleanup(func() { defaultSource = saved })
	home := t.TempDir()
	t.Setenv("RES2NET_HOME", home)

	predict := func(offline bool) (string, string, error) {
		ios, out, errOut := testIO("")
		opts := &predictOptions{IO: ios, Inputs: []string{filepath.Join(photosDir, "coffee.png")}, TopK: 1,
			Format: "text", Run: runFlags{BatchSize: 1, Threads: 1}, Model: modelFlags{Offline: offline}}
		err := runPredict(context.Background(), opts)
		return out.String(), errOut.String(), err
	}
	if _, _, err := predict(true); err == nil || !strings.Contains(err.Error(), "no cached checkpoint") {
		t.Errorf("--offline with an empty cache: %v", err)
	}
	out, errOut, err := predict(false)
	if err != nil || !strings.Contains(out, "coffee.png") || !strings.Contains(errOut, "downloading "+srv.URL) {
		t.Fatalf("err %v\nstdout %q\nstderr %q", err, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(home, "ckpt.pth")); err != nil {
		t.Errorf("checkpoint not cached: %v", err)
	}
	before := hits.Load()
	if _, errOut, err := predict(false); err != nil || errOut != "" || hits.Load() != before {
		t.Errorf("second run: err %v, stderr %q, %d requests; want the cache", err, errOut, hits.Load()-before)
	}
}

// TestFetchDiskFull makes the partial download a link to /dev/full, where
// every write fails with ENOSPC: fetch reports it and leaves no file at the
// final path.
func TestFetchDiskFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	body, err := os.ReadFile(tinyWeights)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	srv, _ := serveFile(t, body)
	home := t.TempDir()
	t.Setenv("RES2NET_HOME", home)
	if err := os.Symlink("/dev/full", filepath.Join(home, "ckpt.pth.part")); err != nil {
		t.Fatal(err)
	}
	ios, _, _ := testIO("")
	err = runFetch(context.Background(), &fetchOptions{IO: ios, URL: srv.URL + "/ckpt.pth", SHA256: hex.EncodeToString(sum[:]), Quiet: true})
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("fetch to a full disk: %v, want a no-space error", err)
	}
	if _, err := os.Stat(filepath.Join(home, "ckpt.pth")); err == nil {
		t.Error("a file is at the final path")
	}
}

func TestFetchSource(t *testing.T) {
	pub := registry.Default.Source()
	other := strings.Repeat("ab", 32)
	tests := []struct {
		name, url, sha string
		want           download.Source
	}{
		{"default", "", "", pub},
		{"mirror", "http://mirror/x.pth", "", download.Source{URL: "http://mirror/x.pth", SHA256: pub.SHA256, Size: pub.Size, Name: pub.Name}},
		{"mirror, hash given in capitals", "http://mirror/x.pth", strings.ToUpper(pub.SHA256), download.Source{URL: "http://mirror/x.pth", SHA256: pub.SHA256, Size: pub.Size, Name: pub.Name}},
		{"another file", "http://host/mine.pth", other, download.Source{URL: "http://host/mine.pth", SHA256: other}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fetchSource(tt.url, tt.sha)
			if err != nil || got != tt.want {
				t.Errorf("fetchSource(%q, %q) = %+v, %v; want %+v", tt.url, tt.sha, got, err, tt.want)
			}
		})
	}
}
