package server

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/res2net/res2net/internal/npy"
	"github.com/res2net/res2net/pkg/classify"
	"github.com/res2net/res2net/pkg/preprocess"
	"github.com/res2net/res2net/pkg/registry"
)

const (
	tinyWeights = "../../testdata/tiny/tiny_legacy.pth"
	photosDir   = "../../testdata/photos"
	tinyName    = "tiny"
)

// loadTiny loads the tiny test checkpoint with the published transform
// minus EXIF orientation, which the PyTorch reference does not apply.
func loadTiny(t testing.TB) *classify.Classifier {
	t.Helper()
	pre := preprocess.DefaultOptions()
	pre.Orient = false
	c, err := classify.Load(tinyWeights, classify.Options{Transform: pre, Labels: registry.Default.Classes})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newTestServer serves the tiny model through httptest and returns its
// URL; everything is closed at the end of the test.
func newTestServer(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	s := New(opts)
	if err := s.AddModel(tinyName, loadTiny(t), 0); err != nil {
		t.Fatal(err)
	}
	s.SetReady(true)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts.URL
}

// photo is one entry of testdata/photos/manifest.json.
type photo struct {
	File   string `json:"file"`
	Logits string `json:"logits"`
	Crop   string `json:"crop"`
	EXIF   *int   `json:"exif_orientation"`
}

var (
	manifestOnce sync.Once
	manifest     []photo
)

func photos(t testing.TB) []photo {
	t.Helper()
	manifestOnce.Do(func() {
		raw, err := os.ReadFile(filepath.Join(photosDir, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m struct{ Files []photo }
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		manifest = m.Files
	})
	return manifest
}

func readPhoto(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(photosDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// referenceLogits returns PyTorch's logits of the tiny model on a photo.
func referenceLogits(t testing.TB, p photo) []float32 {
	t.Helper()
	l, err := npy.Read(filepath.Join(photosDir, p.Logits))
	if err != nil {
		t.Fatal(err)
	}
	return l.Data
}

// closeTo checks logits against PyTorch's with predict's tolerance:
// 1e-4 relative to the largest logit.
func closeTo(t testing.TB, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d logits, want %d", what, len(got), len(want))
	}
	maxAbs := 0.0
	for _, v := range want {
		maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
	}
	tol := 1e-4 * math.Max(1, maxAbs)
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); !(d <= tol) { // NaN fails too
			t.Errorf("%s: logit %d is %g, PyTorch's %g (diff %.3g > %.3g)", what, i, got[i], want[i], d, tol)
		}
	}
}

// do sends a request and returns the status and body.
func do(t testing.TB, method, url, contentType string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// mustJSON marshals v or fails the test.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantError checks an error response: its status and a message containing
// want.
func wantError(t testing.TB, what string, status int, body []byte, wantStatus int, want string) {
	t.Helper()
	var e errorBody
	if status != wantStatus || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, want) {
		t.Errorf("%s: status %d %s, want %d with an error containing %q", what, status, body, wantStatus, want)
	}
}
