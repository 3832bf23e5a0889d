package download

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// payload is the file the test servers serve.
var payload = func() []byte {
	b := make([]byte, 1<<20+123)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}()

func payloadSum() string {
	s := sha256.Sum256(payload)
	return hex.EncodeToString(s[:])
}

// server counts requests and records their Range headers; handler gets
// the request's number, from 1.
type server struct {
	*httptest.Server
	mu     sync.Mutex
	ranges []string
}

func newServer(t *testing.T, handler func(n int, w http.ResponseWriter, r *http.Request)) *server {
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		n := len(s.ranges)
		s.mu.Unlock()
		handler(n, w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

// paced sends the payload in 64 KiB chunks, delay apart.
func paced(delay time.Duration) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
		for chunk := range slices.Chunk(payload, 64<<10) {
			w.Write(chunk)
			w.(http.Flusher).Flush()
			time.Sleep(delay)
		}
	}
}

// serve answers like a static file server, with Range support.
func serve(w http.ResponseWriter, r *http.Request) {
	http.ServeContent(w, r, "model.pth", time.Time{}, bytes.NewReader(payload))
}

// cut announces the whole payload, sends its first n bytes and drops the
// connection.
func cut(w http.ResponseWriter, n int) {
	w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
	w.Write(payload[:n])
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

func (s *server) source() Source {
	return Source{URL: s.URL + "/files/model.pth", SHA256: payloadSum(), Size: int64(len(payload))}
}

var testOpts = Options{Backoff: time.Millisecond, StallTimeout: 5 * time.Second}

// checkFetched asserts that dir holds exactly the complete payload.
func checkFetched(t *testing.T, path, dir string) {
	t.Helper()
	if want := filepath.Join(dir, "model.pth"); path != want {
		t.Errorf("path %q, want %q", path, want)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("file of %d bytes differs from the payload", len(got))
	}
	if _, err := os.Stat(path + ".part"); !os.IsNotExist(err) {
		t.Errorf(".part file left behind: %v", err)
	}
}

// checkNothing asserts that no file is at the final path.
func checkNothing(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "model.pth")); !os.IsNotExist(err) {
		t.Errorf("file at the final path: %v", err)
	}
}

func TestFetch(t *testing.T) {
	n := len(payload)
	tests := []struct {
		name    string
		handler func(i int, w http.ResponseWriter, r *http.Request)
		opts    func(*Options)
		src     func(Source) Source
		ranges  []string // Range headers of the requests, in order
		err     string   // "" for success
	}{
		{name: "success", handler: func(_ int, w http.ResponseWriter, r *http.Request) { serve(w, r) }, ranges: []string{""}},
		{
			name:    "unknown size and hash",
			handler: func(_ int, w http.ResponseWriter, r *http.Request) { serve(w, r) },
			src:     func(s Source) Source { return Source{URL: s.URL} },
			ranges:  []string{""},
		},
		{
			name: "resume after a cut",
			handler: func(i int, w http.ResponseWriter, r *http.Request) {
				if i == 1 {
					cut(w, 300000)
				}
				serve(w, r)
			},
			ranges: []string{"", "bytes=300000-"},
		},
		{
			name: "server ignores Range",
			handler: func(i int, w http.ResponseWriter, r *http.Request) {
				if i == 1 {
					cut(w, 300000)
				}
				w.Write(payload) // 200 with the whole file
			},
			ranges: []string{"", "bytes=300000-"},
		},
		{
			name: "wrong Content-Range",
			handler: func(i int, w http.ResponseWriter, r *http.Request) {
				switch i {
				case 1:
					cut(w, 1000)
				case 2:
					w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", n-1, n))
					w.WriteHeader(http.StatusPartialContent)
					w.Write(payload)
				default:
					serve(w, r)
				}
			},
			ranges: []string{"", "bytes=1000-", ""},
		},
		{
			name:    "404",
			handler: func(_ int, w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
			ranges:  []string{""},
			err:     "404 Not Found",
		},
		{
			name: "500 then success",
			handler: func(i int, w http.ResponseWriter, r *http.Request) {
				if i == 1 {
					http.Error(w, "busy", http.StatusInternalServerError)
					return
				}
				serve(w, r)
			},
			ranges: []string{"", ""},
		},
		{
			name: "429 then success",
			handler: func(i int, w http.ResponseWriter, r *http.Request) {
				if i == 1 {
					http.Error(w, "slow down", http.StatusTooManyRequests)
					return
				}
				serve(w, r)
			},
			ranges: []string{"", ""},
		},
		{
			name: "503 until retries run out",
			handler: func(_ int, w http.ResponseWriter, r *http.Request) {
				http.Error(w, "down", http.StatusServiceUnavailable)
			},
			opts:   func(o *Options) { o.Retries = 2 },
			ranges: []string{"", "", ""},
			err:    "503 Service Unavailable",
		},
		{
			name: "stall then resume",
			handler: func(i int, w http.ResponseWriter, r *http.Request) {
				if i == 1 {
					w.Header().Set("Content-Length", fmt.Sprint(n))
					w.Write(payload[:5000])
					w.(http.Flusher).Flush()
					<-r.Context().Done() // until the client gives up
					return
				}
				serve(w, r)
			},
			opts:   func(o *Options) { o.StallTimeout = 200 * time.Millisecond },
			ranges: []string{"", "bytes=5000-"},
		},
		{
			name: "stall before headers, no retries",
			handler: func(_ int, w http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
			},
			opts:   func(o *Options) { o.StallTimeout = 100 * time.Millisecond; o.Retries = -1 },
			ranges: []string{""},
			err:    "no data for 100ms",
		},
		{
			name: "longer than announced",
			handler: func(_ int, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(n+5))
				w.Write(append(payload, "extra"...))
			},
			ranges: []string{""},
			err:    "announces 1048704 bytes, expected 1048699",
		},
		{
			name: "chunked body longer than expected",
			handler: func(_ int, w http.ResponseWriter, r *http.Request) {
				w.Write(payload)
				w.(http.Flusher).Flush() // forces chunked encoding
				w.Write([]byte("extra"))
			},
			ranges: []string{""},
			err:    "more data than expected",
		},
		{
			name:    "always shorter than announced",
			handler: func(_ int, w http.ResponseWriter, r *http.Request) { cut(w, 1000) },
			opts:    func(o *Options) { o.Retries = 1 },
			ranges:  []string{"", "bytes=1000-"},
			err:     "unexpected EOF",
		},
		{
			name:    "wrong sha256",
			handler: func(_ int, w http.ResponseWriter, r *http.Request) { serve(w, r) },
			src:     func(s Source) Source { s.SHA256 = strings.Repeat("ab", 32); return s },
			ranges:  []string{""},
			err:     "sha256 mismatch: expected " + strings.Repeat("ab", 32) + ", got " + payloadSum(),
		},
		{
			name: "redirect chain",
			handler: func(_ int, w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/files/model.pth":
					http.Redirect(w, r, "/hop/1", http.StatusFound)
				case "/hop/1":
					http.Redirect(w, r, "/hop/2", http.StatusMovedPermanently)
				case "/hop/2":
					http.Redirect(w, r, "/storage/blob?sig=x", http.StatusTemporaryRedirect)
				default:
					serve(w, r)
				}
			},
			ranges: []string{"", "", "", ""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.handler)
			src := srv.source()
			if tc.src != nil {
				src = tc.src(src)
			}
			opts := testOpts
			if tc.opts != nil {
				tc.opts(&opts)
			}
			dir := t.TempDir()
			path, err := Fetch(context.Background(), src, dir, opts)
			if got := srv.requests(); strings.Join(got, ",") != strings.Join(tc.ranges, ",") {
				t.Errorf("requests with Range %q, want %q", got, tc.ranges)
			}
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				checkFetched(t, path, dir)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), src.URL) {
				t.Fatalf("error %v, want one naming %q and the URL", err, tc.err)
			}
			checkNothing(t, dir)
		})
	}
}

func TestFetchChecksumLeavesNothing(t *testing.T) {
	srv := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) { serve(w, r) })
	src := srv.source()
	src.SHA256 = strings.Repeat("0", 64)
	dir := t.TempDir()
	_, err := Fetch(context.Background(), src, dir, testOpts)
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("error %v, want ErrChecksum", err)
	}
	for _, name := range dirNames(t, dir) {
		t.Errorf("left %s in the cache", name)
	}
}

func TestFetchCached(t *testing.T) {
	srv := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) { serve(w, r) })
	dir := t.TempDir()
	if _, err := Fetch(context.Background(), srv.source(), dir, testOpts); err != nil {
		t.Fatal(err)
	}
	path, err := Fetch(context.Background(), srv.source(), dir, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	checkFetched(t, path, dir)
	if n := len(srv.requests()); n != 1 {
		t.Errorf("%d requests, want 1: the cached file must be used", n)
	}

	force := testOpts
	force.Force = true
	if _, err := Fetch(context.Background(), srv.source(), dir, force); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.requests()); n != 2 {
		t.Errorf("%d requests after Force, want 2", n)
	}

	// A damaged copy of the right size is downloaded again.
	damaged := append([]byte(nil), payload...)
	damaged[len(damaged)/2] ^= 1
	if err := os.WriteFile(path, damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Fetch(context.Background(), srv.source(), dir, testOpts); err != nil {
		t.Fatal(err)
	}
	checkFetched(t, path, dir)
	if n := len(srv.requests()); n != 3 {
		t.Errorf("%d requests after damage, want 3", n)
	}
}

func TestFetchCancelThenResume(t *testing.T) {
	sent := make(chan struct{})
	srv := newServer(t, func(i int, w http.ResponseWriter, r *http.Request) {
		if i == 1 {
			w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
			w.Write(payload[:200000])
			w.(http.Flusher).Flush()
			close(sent)
			<-r.Context().Done()
			return
		}
		serve(w, r)
	})
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sent
		// Give the client time to write what it received.
		time.Sleep(200 * time.Millisecond)
		cancel()
	}()
	_, err := Fetch(ctx, srv.source(), dir, testOpts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	fi, err := os.Stat(filepath.Join(dir, "model.pth.part"))
	if err != nil || fi.Size() != 200000 {
		t.Fatalf("partial file: %v, %v; want 200000 bytes", fi, err)
	}
	checkNothing(t, dir)

	path, err := Fetch(context.Background(), srv.source(), dir, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	checkFetched(t, path, dir)
	if got := srv.requests(); len(got) != 2 || got[1] != "bytes=200000-" {
		t.Errorf("requests with Range %q, want a resume from 200000", got)
	}
}

// TestFetchCompletePartial resumes a .part file that already holds the
// whole file of unknown size: the server answers 416.
func TestFetchCompletePartial(t *testing.T) {
	srv := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) { serve(w, r) })
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.pth.part"), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	src := Source{URL: srv.source().URL, SHA256: payloadSum()}
	path, err := Fetch(context.Background(), src, dir, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	checkFetched(t, path, dir)
	if got := srv.requests(); len(got) != 1 || got[0] != fmt.Sprintf("bytes=%d-", len(payload)) {
		t.Errorf("requests with Range %q", got)
	}
}

func TestFetchConcurrent(t *testing.T) {
	srv := newServer(t, paced(5*time.Millisecond))
	dir := t.TempDir()
	var wg sync.WaitGroup
	var failures atomic.Int32
	paths := make([]string, 3)
	for i := range paths {
		wg.Go(func() {
			p, err := Fetch(context.Background(), srv.source(), dir, testOpts)
			if err != nil {
				t.Error(err)
				failures.Add(1)
			}
			paths[i] = p
		})
	}
	wg.Wait()
	if failures.Load() > 0 {
		return
	}
	for _, p := range paths {
		checkFetched(t, p, dir)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
}

// TestFetchTwoProcesses runs two Fetch calls in child processes (this test
// binary, running TestFetchChildProcess) against one slow server.
func TestFetchTwoProcesses(t *testing.T) {
	srv := newServer(t, paced(10*time.Millisecond))
	dir := t.TempDir()
	var cmds []*exec.Cmd
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFetchChildProcess$")
		cmd.Env = append(os.Environ(), "WEIGHTS_CHILD_URL="+srv.source().URL, "WEIGHTS_CHILD_DIR="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v", err)
		}
	}
	checkFetched(t, filepath.Join(dir, "model.pth"), dir)
	if n := len(srv.requests()); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
}

// TestFetchChildProcess is the child of TestFetchTwoProcesses.
func TestFetchChildProcess(t *testing.T) {
	u, dir := os.Getenv("WEIGHTS_CHILD_URL"), os.Getenv("WEIGHTS_CHILD_DIR")
	if u == "" {
		t.Skip("runs as a child of TestFetchTwoProcesses")
	}
	src := Source{URL: u, SHA256: payloadSum(), Size: int64(len(payload))}
	if _, err := Fetch(context.Background(), src, dir, testOpts); err != nil {
		t.Fatal(err)
	}
}

func TestFetchUnwritableDir(t *testing.T) {
	srv := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) { serve(w, r) })
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Fetch(context.Background(), srv.source(), filepath.Join(file, "cache"), testOpts)
	if err == nil || !strings.Contains(err.Error(), "cache directory") {
		t.Errorf("under a regular file: error %v, want one about the cache directory", err)
	}

	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	ro := t.TempDir()
	if err := os.Chmod(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(ro, 0o755) })
	_, err = Fetch(context.Background(), srv.source(), ro, testOpts)
	if err == nil || !strings.Contains(err.Error(), "cannot write to the cache directory") {
		t.Errorf("read-only: error %v", err)
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("%d requests to fill a read-only directory", n)
	}
}

func TestFetchBadURL(t *testing.T) {
	for _, u := range []string{"ftp://example.com/model.pth", "https://example.com/", "::bad"} {
		if _, err := Fetch(context.Background(), Source{URL: u}, t.TempDir(), testOpts); err == nil {
			t.Errorf("%q: no error", u)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the progress bar's writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestFetchProgress(t *testing.T) {
	srv := newServer(t, func(i int, w http.ResponseWriter, r *http.Request) {
		if i == 1 {
			cut(w, 1000)
		}
		serve(w, r)
	})
	var out syncBuffer
	opts := testOpts
	opts.Progress = &out
	if _, err := Fetch(context.Background(), srv.source(), t.TempDir(), opts); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	t.Logf("progress output:\n%q", got)
	for _, want := range []string{"model.pth", "100%", "1.0 MB", "retrying in"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress output lacks %q:\n%s", want, got)
		}
	}
}

func TestContentRange(t *testing.T) {
	tests := []struct {
		h            string
		start, total int64
		ok           bool
	}{
		{"bytes 100-199/1000", 100, 1000, true},
		{"bytes 0-0/*", 0, -1, true},
		{"bytes */1000", 0, 1000, true},
		{"bytes 100-99/1000", 0, -1, false},
		{"bytes 100-1000/1000", 0, -1, false},
		{"bytes -5-10/20", 0, -1, false},
		{"items 1-2/3", 0, -1, false},
		{"bytes 1-2", 0, -1, false},
		{"", 0, -1, false},
	}
	for _, tc := range tests {
		start, total, ok := contentRange(tc.h)
		if start != tc.start || total != tc.total || ok != tc.ok {
			t.Errorf("contentRange(%q) = %d, %d, %v; want %d, %d, %v", tc.h, start, total, ok, tc.start, tc.total, tc.ok)
		}
	}
}

// TestFetchName: a Source with Name downloads to dir/Name, whatever the
// URL's base name, and its .part and .lock files derive from Name.
func TestFetchName(t *testing.T) {
	srv := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) { serve(w, r) })
	dir := t.TempDir()
	src := srv.source()
	src.Name = "published.pth"
	got, err := Fetch(context.Background(), src, dir, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "published.pth"); got != want {
		t.Errorf("path %q, want %q", got, want)
	}
	if b, err := os.ReadFile(got); err != nil || !bytes.Equal(b, payload) {
		t.Errorf("file differs from the payload (%v)", err)
	}
	names := dirNames(t, dir)
	if want := []string{"published.pth", "published.pth" + StampSuffix}; !slices.Equal(names, want) {
		t.Errorf("directory holds %q, want %q", names, want)
	}

	for _, name := range []string{".", "..", "a/b", "../x.pth", "/abs.pth", "dir/"} {
		src.Name = name
		_, err := Fetch(context.Background(), src, dir, testOpts)
		if err == nil || !strings.Contains(err.Error(), "not a plain file name") {
			t.Errorf("Name %q: %v, want a plain-file-name error", name, err)
		}
	}
}
