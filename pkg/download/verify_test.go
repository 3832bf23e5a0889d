package download

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHashPrefix(t *testing.T) {
	tests := []struct{ name, want string }{
		{"res2net50_26w_4s-06e79181.pth", "06e79181"},
		{"res2net50_26w_4s_224-345170e8.pth", "345170e8"},
		{"res2next50_4s-6ef7e7bf.pth", "6ef7e7bf"},
		{"a-b-c-0123456789abcdef.tar.gz", "0123456789abcdef"},
		{"model-06E79181.pth", ""}, // torch.hub's rule is lower-case hex
		{"model-12345.pth", ""},    // too short to verify anything
		{"model-06e7918g.pth", ""},
		{"model.pth", ""},
		{"model-" + strings.Repeat("a", 65) + ".pth", ""},
		{"model-06e79181", "06e79181"},
	}
	for _, tt := range tests {
		if got := HashPrefix(tt.name); got != tt.want {
			t.Errorf("HashPrefix(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// dirNames lists dir's entries.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// checkStamped asserts that path carries a stamp recording the payload's
// full digest.
func checkStamped(t *testing.T, path string) {
	t.Helper()
	st, ok := readStamp(path)
	if !ok || st.SHA256 != payloadSum() || st.Size != int64(len(payload)) {
		t.Errorf("stamp %+v (found %v), want the payload's digest and size", st, ok)
	}
}

// TestFetchGitHubRelease serves torch.hub's protocol as GitHub does: the
// release URL redirects to an objects host, and the file name carries the
// start of the digest.
func TestFetchGitHubRelease(t *testing.T) {
	prefix := payloadSum()[:8]
	name := "model-" + prefix + ".pth"
	objects := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("sig") != "x" {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		serve(w, r)
	})
	github := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, objects.URL+"/github-production-release-asset/123?sig=x", http.StatusFound)
	})
	for _, tt := range []struct {
		name   string
		prefix string
		err    error
	}{
		{"prefix matches", prefix, nil},
		{"prefix differs", "deadbeef", ErrChecksum},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := Source{URL: github.URL + "/releases/download/v0.1/" + name, SHA256Prefix: tt.prefix}
			path, err := Fetch(context.Background(), src, dir, testOpts)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), "starting "+tt.prefix) {
					t.Fatalf("error %v, want %v naming the prefix", err, tt.err)
				}
				if names := dirNames(t, dir); len(names) != 0 {
					t.Errorf("left %q", names)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if path != filepath.Join(dir, name) {
				t.Errorf("path %s", path)
			}
			if b, _ := os.ReadFile(path); !bytes.Equal(b, payload) {
				t.Error("content differs")
			}
			checkStamped(t, path)
			if names := dirNames(t, dir); !slices.Equal(names, []string{name, name + StampSuffix}) {
				t.Errorf("directory holds %q", names)
			}
		})
	}
}

// hubServer answers like the Hugging Face hub: HEAD or GET on the resolve
// URL redirects to the CDN with X-Linked-Etag and X-Linked-Size; etag and
// size are what it announces.
type hubServer struct {
	hub, cdn *server
	etag     string
	size     string
	heads    atomic.Int32 // HEAD requests to the hub
	cdnHeads atomic.Int32 // HEAD requests to the CDN: there must be none
	cutFirst atomic.Bool  // the CDN cuts its first answer after 300000 bytes
}

func newHubServer(t *testing.T) *hubServer {
	h := &hubServer{etag: `"` + payloadSum() + `"`, size: fmt.Sprint(len(payload))}
	h.cdn = newServer(t, func(i int, w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			h.cdnHeads.Add(1)
		}
		if i == 1 && h.cutFirst.Load() {
			cut(w, 300000)
		}
		serve(w, r)
	})
	h.hub = newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			h.heads.Add(1)
		}
		switch r.URL.Path {
		case "/old-name/resolve/main/model.safetensors": // a renamed repository
			http.Redirect(w, r, "/timm/m.in1k/resolve/main/model.safetensors", http.StatusTemporaryRedirect)
		case "/timm/m.in1k/resolve/main/model.safetensors":
			w.Header().Set("X-Linked-Etag", h.etag)
			w.Header().Set("X-Linked-Size", h.size)
			w.Header().Set("X-Repo-Commit", "0123abcd")
			http.Redirect(w, r, h.cdn.URL+"/repos/ab/cd/blob?X-Amz-Signature=s", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	})
	return h
}

func (h *hubServer) source() Source {
	return Source{URL: h.hub.URL + "/timm/m.in1k/resolve/main/model.safetensors", Name: "m.in1k.safetensors", Hub: true}
}

func TestFetchHub(t *testing.T) {
	h := newHubServer(t)
	dir := t.TempDir()
	path, err := Fetch(context.Background(), h.source(), dir, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, payload) || path != filepath.Join(dir, "m.in1k.safetensors") {
		t.Errorf("%s: content differs", path)
	}
	checkStamped(t, path)
	// The HEAD does not follow the redirect; the GET goes to the CDN alone.
	if h.heads.Load() != 1 || h.cdnHeads.Load() != 0 || len(h.hub.requests()) != 1 || len(h.cdn.requests()) != 1 {
		t.Errorf("hub: %d requests (%d HEAD), CDN: %d requests (%d HEAD); want one HEAD to the hub, one GET to the CDN",
			len(h.hub.requests()), h.heads.Load(), len(h.cdn.requests()), h.cdnHeads.Load())
	}

	// Cached and stamped: no request at all.
	if _, err := Fetch(context.Background(), h.source(), dir, testOpts); err != nil {
		t.Fatal(err)
	}
	if n := len(h.hub.requests()) + len(h.cdn.requests()); n != 2 {
		t.Errorf("%d requests in all after a cached fetch, want still 2", n)
	}

	// Without its stamp the file cannot be checked offline; Fetch asks the
	// hub for the digest and keeps the file without downloading it again.
	os.Remove(path + StampSuffix)
	if err := Verify(path, h.source()); !errors.Is(err, ErrUnverified) {
		t.Errorf("Verify without a stamp: %v, want ErrUnverified", err)
	}
	if _, err := Fetch(context.Background(), h.source(), dir, testOpts); err != nil {
		t.Fatal(err)
	}
	if h.heads.Load() != 2 || len(h.cdn.requests()) != 1 {
		t.Errorf("%d HEADs, %d CDN requests; want a second HEAD and no download", h.heads.Load(), len(h.cdn.requests()))
	}
	checkStamped(t, path)
}

func TestFetchHubErrors(t *testing.T) {
	other := strings.Repeat("ab", 32)
	tests := []struct {
		name  string
		setup func(h *hubServer, src *Source)
		err   string
		is    error
		gets  int // requests the CDN may see
	}{
		{"renamed repository", func(h *hubServer, src *Source) {
			src.URL = h.hub.URL + "/old-name/resolve/main/model.safetensors"
		}, "", nil, 1},
		{"the hub's digest is not the content's", func(h *hubServer, _ *Source) { h.etag = `"` + other + `"` }, "sha256 mismatch", ErrChecksum, 1},
		{"the hub's size is not the content's", func(h *hubServer, _ *Source) { h.size = "1000" }, "the server announces 1048699 bytes, expected 1000", nil, 1},
		{"a weak etag", func(h *hubServer, _ *Source) { h.etag = `W/"` + payloadSum() + `"` }, "", nil, 1},
		{"not a digest", func(h *hubServer, _ *Source) { h.etag = `"abc123"` }, `X-Linked-Etag "\"abc123\"", which is not a SHA-256`, nil, 0},
		{"no size", func(h *hubServer, _ *Source) { h.size = "" }, "X-Linked-Size", nil, 0},
		{"pinned digest differs", func(_ *hubServer, src *Source) { src.SHA256 = other }, "the hub announces " + payloadSum() + ", expected " + other, ErrChecksum, 0},
		{"pinned size differs", func(_ *hubServer, src *Source) { src.Size = 5 }, "the hub announces 1048699 bytes, expected 5", ErrSize, 0},
		{"missing file", func(h *hubServer, src *Source) { src.URL = h.hub.URL + "/timm/x/resolve/main/model.safetensors" }, "404 Not Found", nil, 0},
		{"announced size over the cap", func(h *hubServer, _ *Source) { h.size = "1000000000000" }, "larger than the size limit of 2147483648 bytes: the hub announces 1000000000000", ErrTooLarge, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHubServer(t)
			src := h.source()
			tt.setup(h, &src)
			dir := t.TempDir()
			_, err := Fetch(context.Background(), src, dir, testOpts)
			if n := len(h.cdn.requests()); n != tt.gets {
				t.Errorf("%d requests to the CDN, want %d", n, tt.gets)
			}
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("left %q", names)
			}
		})
	}
}

// TestFetchHubPlainServer: a mirror that serves the file without the
// hub's headers can only be used with a known digest.
func TestFetchHubPlainServer(t *testing.T) {
	srv := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) { serve(w, r) })
	src := Source{URL: srv.URL + "/model.pth", Hub: true}
	_, err := Fetch(context.Background(), src, t.TempDir(), testOpts)
	if err == nil || !strings.Contains(err.Error(), "announces no X-Linked-Etag, so the file cannot be verified") {
		t.Errorf("no digest: %v", err)
	}
	src.SHA256 = payloadSum()
	path, err := Fetch(context.Background(), src, t.TempDir(), testOpts)
	if err != nil {
		t.Fatal(err)
	}
	checkStamped(t, path)
}

// TestFetchHubRetry: a hub that fails with 503 is asked again.
func TestFetchHubRetry(t *testing.T) {
	h := newHubServer(t)
	var fails atomic.Int32
	inner := h.hub.Config.Handler
	h.hub.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fails.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		inner.ServeHTTP(w, r)
	})
	if _, err := Fetch(context.Background(), h.source(), t.TempDir(), testOpts); err != nil {
		t.Fatal(err)
	}
	if fails.Load() != 3 {
		t.Errorf("%d hub requests, want 3", fails.Load())
	}
}

func TestVerify(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.pth")
	if err := os.WriteFile(path, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	src := Source{SHA256: payloadSum(), Size: int64(len(payload))}
	if err := VerifyStamp(path, src); !errors.Is(err, ErrUnverified) {
		t.Errorf("VerifyStamp before any check: %v, want ErrUnverified", err)
	}
	if err := Verify(path, src); err != nil {
		t.Fatal(err)
	}
	checkStamped(t, path)
	if err := VerifyStamp(path, src); err != nil {
		t.Errorf("VerifyStamp after Verify: %v", err)
	}
	// Each constraint is checked against the stamp, without hashing.
	for _, bad := range []Source{{SHA256: strings.Repeat("0", 64)}, {SHA256Prefix: "ffffffff"}, {Size: 7}} {
		if err := Verify(path, bad); !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrSize) {
			t.Errorf("Verify(%+v): %v, want a mismatch", bad, err)
		}
	}

	// The stamp is what makes the check cheap: a change that keeps the size
	// and the modification time goes unseen (proof that nothing is hashed)...
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	damaged := slices.Clone(payload)
	damaged[100] ^= 1
	if err := os.WriteFile(path, damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := Verify(path, src); err != nil {
		t.Errorf("same size and time: %v, want the stamp trusted", err)
	}
	// ...and one that moves the time is caught.
	later := fi.ModTime().Add(time.Second)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if err := Verify(path, src); !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), path) {
		t.Errorf("damaged file: %v, want ErrChecksum naming it", err)
	}

	// A stamp that does not parse counts as none.
	if err := os.WriteFile(path, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+StampSuffix, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Verify(path, src); err != nil {
		t.Errorf("garbled stamp: %v", err)
	}
	checkStamped(t, path)

	if err := Verify(filepath.Join(dir, "missing.pth"), src); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if err := Verify(dir, src); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v", err)
	}
	if err := Verify(path, Source{Hub: true}); err != nil {
		t.Errorf("a stamped hub file: %v", err)
	}
}

// TestFetchLimits: a body of unknown size is capped, a trickle fails, and
// both within bounded time.
func TestFetchLimits(t *testing.T) {
	const limit = 100 << 10
	tests := []struct {
		name     string
		handler  func(i int, w http.ResponseWriter, r *http.Request)
		opts     Options
		err      string
		is       error
		requests int
	}{
		{
			name: "endless chunked body",
			handler: func(_ int, w http.ResponseWriter, r *http.Request) {
				for r.Context().Err() == nil {
					if _, err := w.Write(payload[:32<<10]); err != nil {
						return
					}
				}
			},
			opts:     Options{MaxSize: limit},
			err:      "larger than the size limit of 102400 bytes",
			is:       ErrTooLarge,
			requests: 1,
		},
		{
			name: "announced size over the cap",
			handler: func(_ int, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
				w.Write(payload)
			},
			opts:     Options{MaxSize: limit},
			err:      "the server announces 1048699",
			is:       ErrTooLarge,
			requests: 1,
		},
		{
			name: "one byte every 20 ms",
			handler: func(_ int, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
				for i := 0; r.Context().Err() == nil; i++ {
					w.Write(payload[i : i+1])
					w.(http.Flusher).Flush()
					time.Sleep(20 * time.Millisecond)
				}
			},
			opts:     Options{StallTimeout: 300 * time.Millisecond, MinRate: 1000, Retries: 1},
			err:      "under the minimum of 1000 bytes/s",
			requests: 2,
		},
		{
			name: "nothing after the headers",
			handler: func(_ int, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			},
			opts:     Options{StallTimeout: 200 * time.Millisecond, Retries: -1},
			err:      "no data for 200ms",
			requests: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.handler)
			opts := tt.opts
			opts.Backoff = time.Millisecond
			dir := t.TempDir()
			start := time.Now()
			_, err := Fetch(context.Background(), Source{URL: srv.URL + "/model.pth"}, dir, opts)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v", took)
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
			if n := len(srv.requests()); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			if tt.is != nil {
				if names := dirNames(t, dir); len(names) != 0 {
					t.Errorf("left %q", names)
				}
			}
		})
	}
}

// TestRateWatchSlowButSteady: a transfer above the minimum rate is not
// cancelled however long it lasts.
func TestRateWatchSlowButSteady(t *testing.T) {
	srv := newServer(t, paced(30*time.Millisecond)) // about 2 MB/s, over 0.5 s
	opts := Options{StallTimeout: 100 * time.Millisecond, MinRate: 100 << 10, Retries: -1}
	path, err := Fetch(context.Background(), srv.source(), t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, payload) {
		t.Error("content differs")
	}
}

// TestFetchBadRedirects: loops, long chains and other schemes fail at
// once, without the retries a transient error gets.
func TestFetchBadRedirects(t *testing.T) {
	tests := []struct {
		name     string
		handler  func(i int, w http.ResponseWriter, r *http.Request)
		err      string
		requests int
	}{
		{"loop", func(_ int, w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/model.pth" {
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			} else {
				http.Redirect(w, r, "/model.pth", http.StatusFound)
			}
		}, "a redirect loop back to", 2},
		{"file scheme", func(_ int, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "file:///etc/passwd")
			w.WriteHeader(http.StatusFound)
		}, "to file:///etc/passwd: not an http(s) URL", 1},
		{"long chain", func(i int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, fmt.Sprintf("/hop/%d", i), http.StatusFound)
		}, "stopped after 10 redirects", 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.handler)
			dir := t.TempDir()
			_, err := Fetch(context.Background(), Source{URL: srv.URL + "/model.pth"}, dir, testOpts)
			if !errors.Is(err, ErrRedirect) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want ErrRedirect saying %q", err, tt.err)
			}
			if n := len(srv.requests()); n != tt.requests {
				t.Errorf("%d requests, want %d (one attempt)", n, tt.requests)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("left %q", names)
			}
		})
	}
}

// TestFetchLeavesNoDebris: a failed attempt leaves no empty .part and no
// lock file; a cut one leaves the .part to resume.
func TestFetchLeavesNoDebris(t *testing.T) {
	srv := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	dir := t.TempDir()
	if _, err := Fetch(context.Background(), srv.source(), dir, testOpts); err == nil {
		t.Fatal("no error for a 404")
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("after a 404: %q", names)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Fetch(ctx, srv.source(), dir, testOpts); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("after a cancelled fetch: %q", names)
	}

	cutSrv := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) { cut(w, 1000) })
	opts := testOpts
	opts.Retries = -1
	if _, err := Fetch(context.Background(), cutSrv.source(), dir, opts); err == nil {
		t.Fatal("no error for a cut")
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"model.pth.part"}) {
		t.Errorf("after a cut: %q, want only the .part to resume", names)
	}
}

func TestImport(t *testing.T) {
	from := filepath.Join(t.TempDir(), "downloaded elsewhere.pth")
	if err := os.WriteFile(from, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	src := Source{URL: "https://example.invalid/files/model.pth", SHA256Prefix: payloadSum()[:8]}
	dir := t.TempDir()
	path, err := Import(context.Background(), src, filepath.Join(dir, "cache"), from, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	checkFetched(t, path, filepath.Join(dir, "cache"))
	checkStamped(t, path)
	if st, _ := readStamp(path); st.From != from {
		t.Errorf("stamp records %q as the origin", st.From)
	}
	// Importing the cached file itself verifies it in place.
	if p, err := Import(context.Background(), src, filepath.Join(dir, "cache"), path, testOpts); err != nil || p != path {
		t.Errorf("import of the cached file: %q, %v", p, err)
	}

	tests := []struct {
		name string
		src  Source
		from string
		err  string
	}{
		{"wrong digest", Source{URL: src.URL, SHA256: strings.Repeat("0", 64)}, from, "sha256 mismatch"},
		{"wrong prefix", Source{URL: src.URL, SHA256Prefix: "00000000"}, from, "expected a digest starting 00000000"},
		{"wrong size", Source{URL: src.URL, Size: 10}, from, "1048699 bytes, expected 10"},
		{"missing", src, filepath.Join(dir, "nope.pth"), "no such file"},
		{"a directory", src, dir, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := t.TempDir()
			_, err := Import(context.Background(), tt.src, cache, tt.from, testOpts)
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tt.from) {
				t.Fatalf("error %v, want one naming %s and %q", err, tt.from, tt.err)
			}
			if names := dirNames(t, cache); len(names) != 0 {
				t.Errorf("left %q", names)
			}
		})
	}
	small := testOpts
	small.MaxSize = 1000
	if _, err := Import(context.Background(), src, t.TempDir(), from, small); !errors.Is(err, ErrTooLarge) ||
		!strings.Contains(err.Error(), "limit of 1000 bytes: the file has 1048699") {
		t.Errorf("a file over the cap: %v", err)
	}
}

// TestImportHub asks the hub for the digest of the file to import, and
// downloads nothing.
func TestImportHub(t *testing.T) {
	h := newHubServer(t)
	from := filepath.Join(t.TempDir(), "model.safetensors")
	if err := os.WriteFile(from, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	path, err := Import(context.Background(), h.source(), t.TempDir(), from, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	checkStamped(t, path)
	if h.heads.Load() != 1 || len(h.cdn.requests()) != 0 {
		t.Errorf("%d HEADs, %d CDN requests; want one HEAD and no download", h.heads.Load(), len(h.cdn.requests()))
	}
	h.etag = `"` + strings.Repeat("0", 64) + `"`
	if _, err := Import(context.Background(), h.source(), t.TempDir(), from, testOpts); !errors.Is(err, ErrChecksum) {
		t.Errorf("a file the hub disowns: %v, want ErrChecksum", err)
	}
	h.hub.Close()
	opts := testOpts
	opts.Retries = -1
	if _, err := Import(context.Background(), h.source(), t.TempDir(), from, opts); !errors.Is(err, ErrNoHubDigest) {
		t.Errorf("hub unreachable: %v", err)
	}
}

// TestFetchResumeBehindRedirects: a cut download from the hub's CDN or
// GitHub's objects host resumes with a Range request to where the
// redirect points.
func TestFetchResumeBehindRedirects(t *testing.T) {
	for _, hubProto := range []bool{false, true} {
		t.Run(fmt.Sprintf("hub=%v", hubProto), func(t *testing.T) {
			h := newHubServer(t)
			h.cutFirst.Store(true)
			src := h.source()
			if !hubProto { // the same redirect, followed by the GET, checked by prefix
				src = Source{URL: src.URL, Name: "m-" + payloadSum()[:8] + ".pth", SHA256Prefix: payloadSum()[:8]}
			}
			path, err := Fetch(context.Background(), src, t.TempDir(), testOpts)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(path); !bytes.Equal(b, payload) {
				t.Error("content differs")
			}
			checkStamped(t, path)
			if got := h.cdn.requests(); strings.Join(got, ",") != ",bytes=300000-" {
				t.Errorf("CDN requests with Range %q, want a resume from 300000", got)
			}
		})
	}
}

// TestVerifyConcurrent: processes that check one unstamped file at once
// (predict runs without the download lock) all accept it and leave one
// valid stamp and no temporary files.
func TestVerifyConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.pth")
	if err := os.WriteFile(path, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	src := Source{SHA256: payloadSum()}
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() { errs <- Verify(path, src) }()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	checkStamped(t, path)
	if names := dirNames(t, dir); !slices.Equal(names, []string{"model.pth", "model.pth" + StampSuffix}) {
		t.Errorf("directory holds %q", names)
	}
}
