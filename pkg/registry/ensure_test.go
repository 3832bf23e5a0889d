package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/res2net/res2net/pkg/download"
)

// published is the file the test server publishes.
var published = bytes.Repeat([]byte("res2net weights "), 4096)

// testEntry publishes `published` on a local server under a torch.hub
// name, verified by its prefix, and counts the requests.
func testEntry(t *testing.T) (Entry, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if strings.HasSuffix(r.URL.Path, "/missing.pth") {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "m.pth", time.Time{}, bytes.NewReader(published))
	}))
	t.Cleanup(srv.Close)
	sum := sha256.Sum256(published)
	file := "tiny-" + hex.EncodeToString(sum[:4]) + ".pth"
	e := Entry{Name: "tiny", URL: srv.URL + "/releases/" + file, File: file, Verify: VerifyNamePrefix, Classes: []string{"a", "b"}}
	return e, &hits
}

// ensureOpts uses test directories, no retries, and notice when not nil.
func ensureOpts(t *testing.T, notice *bytes.Buffer) EnsureOptions {
	o := EnsureOptions{Dir: t.TempDir(), TorchHub: t.TempDir(), Download: download.Options{Backoff: time.Millisecond, Retries: -1}}
	if notice != nil {
		o.Notice = notice
	}
	return o
}

func TestEnsure(t *testing.T) {
	e, hits := testEntry(t)
	var notice bytes.Buffer
	opts := ensureOpts(t, &notice)
	p, err := Ensure(context.Background(), e, opts)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, published) || p != filepath.Join(opts.Dir, e.File) {
		t.Errorf("%s: wrong content", p)
	}
	if hits.Load() != 1 || !strings.Contains(notice.String(), "downloading "+e.URL) {
		t.Errorf("%d requests, notice %q", hits.Load(), notice.String())
	}
	if err := download.VerifyStamp(p, e.Source()); err != nil {
		t.Errorf("not stamped: %v", err)
	}

	// Cached: no request, offline too, and nothing said.
	notice.Reset()
	for _, offline := range []bool{false, true} {
		opts.Offline = offline
		if q, err := Ensure(context.Background(), e, opts); err != nil || q != p {
			t.Errorf("offline %v: %q, %v", offline, q, err)
		}
	}
	if hits.Load() != 1 || notice.Len() != 0 {
		t.Errorf("%d requests, notice %q; want the cache", hits.Load(), notice.String())
	}

	// Force downloads again.
	opts.Offline, opts.Force = false, true
	if _, err := Ensure(context.Background(), e, opts); err != nil || hits.Load() != 2 {
		t.Errorf("force: %v, %d requests", err, hits.Load())
	}
	opts.Force = false

	// A damaged cached file is refused offline, and replaced online.
	if err := os.WriteFile(p, published[1:], 0o644); err != nil {
		t.Fatal(err)
	}
	opts.Offline = true
	_, err = Ensure(context.Background(), e, opts)
	var ue *UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, download.ErrChecksum) || !strings.Contains(err.Error(), "no verified cached checkpoint of tiny") {
		t.Errorf("offline, damaged: %v", err)
	}
	opts.Offline = false
	notice.Reset()
	if _, err := Ensure(context.Background(), e, opts); err != nil || hits.Load() != 3 || !strings.Contains(notice.String(), "Cached checkpoint rejected") {
		t.Errorf("online, damaged: %v, %d requests, notice %q", err, hits.Load(), notice.String())
	}
}

func TestEnsureTorchHub(t *testing.T) {
	e, hits := testEntry(t)
	var notice bytes.Buffer
	opts := ensureOpts(t, &notice)
	opts.Offline = true // the torch hub's copy needs no network
	th := filepath.Join(opts.TorchHub, e.File)
	if err := os.WriteFile(th, published, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Ensure(context.Background(), e, opts)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, published) || hits.Load() != 0 || !strings.Contains(notice.String(), "Importing the torch hub's copy "+th) {
		t.Errorf("%d requests, notice %q", hits.Load(), notice.String())
	}

	// A torch hub file that does not verify is left alone and downloaded over.
	opts = ensureOpts(t, &notice)
	if err := os.WriteFile(filepath.Join(opts.TorchHub, e.File), []byte("other"), 0o644); err != nil {
		t.Fatal(err)
	}
	notice.Reset()
	if _, err := Ensure(context.Background(), e, opts); err != nil || hits.Load() != 1 ||
		!strings.Contains(notice.String(), "Not using the torch hub's copy") {
		t.Errorf("%v, %d requests, notice %q", err, hits.Load(), notice.String())
	}
}

func TestEnsureUnavailable(t *testing.T) {
	e, _ := testEntry(t)
	opts := ensureOpts(t, nil)
	opts.Offline = true
	_, err := Ensure(context.Background(), e, opts)
	var ue *UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "no cached checkpoint of tiny at "+filepath.Join(opts.Dir, e.File)) {
		t.Errorf("offline, empty cache: %v", err)
	}

	e.URL = strings.Replace(e.URL, e.File, "missing.pth", 1)
	opts.Offline = false
	_, err = Ensure(context.Background(), e, opts)
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "404 Not Found") {
		t.Fatalf("failed download: %v", err)
	}
	for _, hint := range []string{"--weights FILE", "res2net fetch --model tiny --url URL", "res2net fetch --model tiny --from FILE", "RES2NET_HOME"} {
		if !strings.Contains(err.Error(), hint) {
			t.Errorf("%q does not suggest %q", err, hint)
		}
	}
	if names, _ := os.ReadDir(opts.Dir); len(names) != 0 {
		t.Errorf("the failed download left %d files", len(names))
	}
	// The default model's hints need no --model.
	if msg := (&UnavailableError{Entry: Default, Err: errors.New("x")}).Error(); strings.Contains(msg, "--model") || !strings.Contains(msg, "'res2net fetch --from FILE'") {
		t.Errorf("default model: %q", msg)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Ensure(ctx, e, opts); !errors.Is(err, context.Canceled) || errors.As(err, &ue) {
		t.Errorf("cancelled: %v, want the context's error alone", err)
	}
}

// TestEnsureHubOffline: a hub file with no stamp cannot be verified
// offline; the torch hub is not looked in for it.
func TestEnsureHubOffline(t *testing.T) {
	e, err := Lookup("res2net50d")
	if err != nil {
		t.Fatal(err)
	}
	opts := ensureOpts(t, nil)
	opts.Offline = true
	if err := os.WriteFile(filepath.Join(opts.Dir, e.File), published, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(context.Background(), e, opts); !errors.Is(err, download.ErrUnverified) {
		t.Errorf("unstamped hub file offline: %v, want ErrUnverified", err)
	}
}
