package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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

// tinyEntry is the default model with the tiny test checkpoint published
// at url, under the cache name ckpt.pth.
func tinyEntry(t *testing.T, url string) (registry.Entry, []byte) {
	t.Helper()
	body, sum := tinyCheckpoint(t)
	e := registry.Default
	e.URL, e.File, e.SHA256, e.Size = url, "ckpt.pth", sum, int64(len(body))
	return e, body
}

// tinyCheckpoint returns the bytes of the tiny test checkpoint and their
// SHA-256 in hex, as a registry entry or --sha256 gives it.
func tinyCheckpoint(t *testing.T) (body []byte, sha256Hex string) {
	t.Helper()
	body, err := os.ReadFile(tinyWeights)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	return body, hex.EncodeToString(sum[:])
}

func TestFetch(t *testing.T) {
	body, good := tinyCheckpoint(t)
	srv, hits := serveFile(t, body)
	home := t.TempDir()
	t.Setenv("RES2NET_HOME", home)

	fetch := func(sha string, force bool) (string, error) {
		ios, out, _ := testIO("")
		err := runFetch(context.Background(), &fetchOptions{IO: ios, URL: srv.URL + "/ckpt.pth", SHA256: sha, Force: force})
		return strings.TrimSpace(out.String()), err
	}
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
	p := &predictOptions{IO: ios, Inputs: []string{filepath.Join(photosDir, "coffee.png")}, TopK: 1, Format: "text",
		Net: netFlags{Model: modelFlags{Weights: path}, Run: runFlags{BatchSize: 1, Threads: 1}}}
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
// predict announces the download, fetches the model's checkpoint and uses
// it; --offline with nothing cached says what to do.
func TestPredictFetchesDefault(t *testing.T) {
	body, _ := tinyCheckpoint(t)
	srv, hits := serveFile(t, body)
	entry, _ := tinyEntry(t, srv.URL+"/ckpt.pth")
	home := t.TempDir()
	t.Setenv("RES2NET_HOME", home)
	t.Setenv("TORCH_HOME", t.TempDir())

	predict := func(offline bool) (string, string, error) {
		ios, out, errOut := testIO("")
		opts := &predictOptions{IO: ios, Inputs: []string{filepath.Join(photosDir, "coffee.png")}, TopK: 1,
			Format: "text", Net: netFlags{Run: runFlags{BatchSize: 1, Threads: 1}, Model: modelFlags{Offline: offline, Entry: &entry}}}
		err := runPredict(context.Background(), opts)
		return out.String(), errOut.String(), err
	}
	_, _, err := predict(true)
	if err == nil || !strings.Contains(err.Error(), "no cached checkpoint") || !strings.Contains(err.Error(), "--weights") ||
		!strings.Contains(err.Error(), "fetch --from FILE") || !strings.Contains(err.Error(), "RES2NET_HOME") {
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

	// A damaged cached file is not used offline: the same check as fetch's.
	cached := filepath.Join(home, "ckpt.pth")
	if err := os.WriteFile(cached, body[:len(body)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := predict(true); err == nil || !errors.Is(err, download.ErrSize) {
		t.Errorf("--offline with a truncated cached file: %v, want a size mismatch", err)
	}
}

// TestFetchDiskFull makes the partial download a link to /dev/full, where
// every write fails with ENOSPC: fetch reports it and leaves no file at the
// final path.
func TestFetchDiskFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	body, sum := tinyCheckpoint(t)
	srv, _ := serveFile(t, body)
	home := t.TempDir()
	t.Setenv("RES2NET_HOME", home)
	if err := os.Symlink("/dev/full", filepath.Join(home, "ckpt.pth.part")); err != nil {
		t.Fatal(err)
	}
	ios, _, _ := testIO("")
	err := runFetch(context.Background(), &fetchOptions{IO: ios, URL: srv.URL + "/ckpt.pth", SHA256: sum, Quiet: true})
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("fetch to a full disk: %v, want a no-space error", err)
	}
	if _, err := os.Stat(filepath.Join(home, "ckpt.pth")); err == nil {
		t.Error("a file is at the final path")
	}
}

func TestFetchSource(t *testing.T) {
	pub := registry.Default.Source()
	timm, err := registry.Lookup("res2net50_48w_2s")
	if err != nil {
		t.Fatal(err)
	}
	hub, err := registry.Lookup("res2net50d")
	if err != nil {
		t.Fatal(err)
	}
	other := strings.Repeat("ab", 32)
	timmSHA := "afed724a" + strings.Repeat("0", 56)
	tests := []struct {
		name     string
		entry    registry.Entry
		url, sha string
		want     download.Source
	}{
		{"default", registry.Default, "", "", pub},
		{"mirror", registry.Default, "http://mirror/x.pth", "", download.Source{URL: "http://mirror/x.pth", SHA256: pub.SHA256, Size: pub.Size, Name: pub.Name}},
		{"mirror, hash given in capitals", registry.Default, "http://mirror/x.pth", strings.ToUpper(pub.SHA256), download.Source{URL: "http://mirror/x.pth", SHA256: pub.SHA256, Size: pub.Size, Name: pub.Name}},
		{"another file", registry.Default, "http://host/mine.pth", other, download.Source{URL: "http://host/mine.pth", SHA256: other}},
		{"timm mirror", timm, "http://m/x.pth", "", download.Source{URL: "http://m/x.pth", SHA256Prefix: "afed724a", Name: timm.File}},
		{"timm mirror with the full hash", timm, "http://m/x.pth", timmSHA, download.Source{URL: "http://m/x.pth", SHA256: timmSHA, SHA256Prefix: "afed724a", Name: timm.File}},
		{"timm mirror, another file", timm, "http://m/x.pth", other, download.Source{URL: "http://m/x.pth", SHA256: other}},
		{"hub mirror", hub, "http://hf-mirror/r/model.safetensors", "", download.Source{URL: "http://hf-mirror/r/model.safetensors", Hub: true, Name: hub.File}},
		{"hub mirror with a hash", hub, "http://m/model.safetensors", other, download.Source{URL: "http://m/model.safetensors", SHA256: other, Hub: true, Name: hub.File}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fetchSource(tt.entry, tt.url, tt.sha)
			if err != nil || got != tt.want {
				t.Errorf("fetchSource(%q, %q) = %+v, %v; want %+v", tt.url, tt.sha, got, err, tt.want)
			}
		})
	}
}

// TestFetchUsage: flag combinations that cannot work are usage errors,
// before anything is downloaded.
func TestFetchUsage(t *testing.T) {
	t.Setenv("RES2NET_HOME", t.TempDir())
	sha := strings.Repeat("ab", 32)
	tests := []struct {
		name string
		opts fetchOptions
		want string
	}{
		{"sha256 alone", fetchOptions{SHA256: sha}, "--sha256 checks the file at --url or --from"},
		{"url and from", fetchOptions{URL: "http://x/y.pth", From: "y.pth"}, "exclude each other"},
		{"force and from", fetchOptions{From: "y.pth", Force: true}, "choose one"},
		{"bad sha256", fetchOptions{URL: "http://x/y.pth", SHA256: "abc"}, "not a 64-digit hex SHA-256"},
		{"unknown model", fetchOptions{Model: "res2net50dd"}, "did you mean res2net50d.in1k?"},
		{"from, not the published digest", fetchOptions{From: "y.pth", SHA256: sha}, "cannot be the digest of res2net50_26w_4s's published file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _ := testIO("")
			tt.opts.IO = ios
			err := runFetch(context.Background(), &tt.opts)
			var usage *usageError
			if !errors.As(err, &usage) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want a usage error saying %q", err, tt.want)
			}
		})
	}
	ios, _, errOut := testIO("")
	if code := execute(context.Background(), ios, []string{"fetch", "--sha256", sha}); code != 2 {
		t.Errorf("exit %d, want 2; stderr %s", code, errOut)
	}
}

// TestFetchFrom imports a local copy: verified, stamped, then used by
// predict --offline; a copy that does not match leaves nothing behind.
func TestFetchFrom(t *testing.T) {
	home := t.TempDir()
	t.Setenv("RES2NET_HOME", home)
	entry, body := tinyEntry(t, "https://example.invalid/ckpt.pth")
	path, err := download.Import(context.Background(), entry.Source(), home, tinyWeights, download.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(body) {
		t.Error("imported file differs")
	}
	ios, out, errOut := testIO("")
	opts := &predictOptions{IO: ios, Inputs: []string{filepath.Join(photosDir, "coffee.png")}, TopK: 1,
		Format: "text", Net: netFlags{Run: runFlags{BatchSize: 1, Threads: 1}, Model: modelFlags{Offline: true, Entry: &entry}}}
	if err := runPredict(context.Background(), opts); err != nil || !strings.Contains(out.String(), "coffee.png") {
		t.Errorf("predict --offline after the import: %v\n%s", err, errOut)
	}

	// The published file's cache name gets nothing from a file that is not it.
	bad := filepath.Join(t.TempDir(), "bad.pth")
	if err := os.WriteFile(bad, []byte("not a checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	ios, _, _ = testIO("")
	err = runFetch(context.Background(), &fetchOptions{IO: ios, From: bad, Cache: cache})
	if !errors.Is(err, download.ErrSize) || !strings.Contains(err.Error(), bad) {
		t.Errorf("--from a wrong file: %v, want a size mismatch naming it", err)
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 0 {
		t.Errorf("the failed import left %d files in the cache", len(entries))
	}
}

// TestFetchModels fetches timm entries from local servers through --url:
// a GitHub file checked by the prefix its name carries, and a hub file by
// the digest the hub announces.
func TestFetchModels(t *testing.T) {
	body, sum := tinyCheckpoint(t)
	cdn, _ := serveFile(t, body)
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(body)))
		http.Redirect(w, r, cdn.URL+"/blob?sig=1", http.StatusFound)
	}))
	t.Cleanup(hub.Close)

	cache := t.TempDir()
	ios, out, _ := testIO("")
	err := runFetch(context.Background(), &fetchOptions{IO: ios, Model: "res2net50d", URL: hub.URL + "/timm/res2net50d.in1k/resolve/main/model.safetensors", Cache: cache, Quiet: true})
	if want := filepath.Join(cache, "res2net50d.in1k.safetensors"); err != nil || strings.TrimSpace(out.String()) != want {
		t.Errorf("hub entry: %v, printed %q, want %s", err, out, want)
	}

	ios, _, _ = testIO("")
	err = runFetch(context.Background(), &fetchOptions{IO: ios, Model: "res2net50_48w_2s", URL: cdn.URL + "/ckpt.pth", Cache: cache, Quiet: true})
	if !errors.Is(err, download.ErrChecksum) || !strings.Contains(err.Error(), "expected a digest starting afed724a") {
		t.Errorf("GitHub entry, another file: %v, want a prefix mismatch", err)
	}
	if _, err := os.Stat(filepath.Join(cache, "res2net50_48w_2s-afed724a.pth")); err == nil {
		t.Error("the file that failed its check is cached")
	}
}

// TestFetchMaxSize: --max-size caps a download of unknown size and says
// which flag raises it.
func TestFetchMaxSize(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for r.Context().Err() == nil {
			if _, err := w.Write(make([]byte, 64<<10)); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	ios, _, errOut := testIO("")
	home := t.TempDir()
	t.Setenv("RES2NET_HOME", home)
	// Another file than the published one (its own digest), so of unknown size.
	code := execute(context.Background(), ios, []string{"fetch", "--url", srv.URL + "/endless.pth", "--sha256", strings.Repeat("ab", 32), "--max-size", "1MiB", "-q"})
	if code != 1 || !strings.Contains(errOut.String(), "larger than the size limit of 1048576 bytes") || !strings.Contains(errOut.String(), "--max-size") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if entries, _ := os.ReadDir(home); len(entries) != 0 {
		t.Errorf("left %d files in the cache", len(entries))
	}
}

func TestSizeFlag(t *testing.T) {
	tests := []struct {
		in   string
		n    int64
		out  string
		fail bool
	}{
		{in: "1048576", n: 1 << 20, out: "1MiB"},
		{in: "2GiB", n: 2 << 30, out: "2GiB"},
		{in: "500 MiB", n: 500 << 20, out: "500MiB"},
		{in: "3k", n: 3 << 10, out: "3KiB"},
		{in: "1500", n: 1500, out: "1500"},
		{in: "10b", n: 10, out: "10"},
		{in: "0", fail: true},
		{in: "-5", fail: true},
		{in: "2 GB", fail: true},
		{in: "lots", fail: true},
		{in: "9999999TiB", fail: true},
	}
	for _, tt := range tests {
		var s sizeFlag
		err := s.Set(tt.in)
		if tt.fail {
			if err == nil {
				t.Errorf("Set(%q) accepted: %d", tt.in, s.n)
			}
			continue
		}
		if err != nil || s.n != tt.n || s.String() != tt.out {
			t.Errorf("Set(%q): %d %q %v; want %d %q", tt.in, s.n, s.String(), err, tt.n, tt.out)
		}
	}
}

// TestFetchFromHubOffline: importing a hub model's file when the hub
// cannot be asked says how to do without it, and --sha256 does.
func TestFetchFromHubOffline(t *testing.T) {
	_, sum := tinyCheckpoint(t)
	cache := t.TempDir()
	ios, out, _ := testIO("")
	opts := &fetchOptions{IO: ios, Model: "res2net50d", From: tinyWeights, Cache: cache, Quiet: true,
		Download: download.Options{Client: &http.Client{Transport: noNetwork{}}, Retries: -1}}
	err := runFetch(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "Without the hub, give the file's SHA-256 with --sha256") {
		t.Fatalf("unreachable hub: %v", err)
	}
	opts.SHA256 = sum
	if err := runFetch(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "res2net50d.in1k.safetensors"); !strings.Contains(out.String(), want) {
		t.Errorf("printed %q, want %s", out, want)
	}
}

// noNetwork fails every request, as a machine offline does.
type noNetwork struct{}

func (noNetwork) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("network is unreachable")
}
