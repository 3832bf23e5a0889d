package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryFirstRun runs the built command on an empty cache, as a new
// user would: the usage errors, the advice when the checkpoint cannot be
// had, an import that fails, and a hub model fetched from a local hub and
// then used offline by another process.
func TestBinaryFirstRun(t *testing.T) {
	bin := binary(t)
	body, sum := tinyCheckpoint(t)
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/blob":
			w.Write(body)
		case strings.HasSuffix(r.URL.Path, "/resolve/main/model.safetensors"):
			w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
			w.Header().Set("X-Linked-Size", fmt.Sprint(len(body)))
			http.Redirect(w, r, "/blob", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(hub.Close)
	bad := filepath.Join(t.TempDir(), "bad.pth")
	if err := os.WriteFile(bad, []byte("not the checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	photo := filepath.Join(photosDir, "coffee.png")
	hints := []string{"--weights FILE", "res2net fetch --url URL", "res2net fetch --from FILE", "RES2NET_HOME"}

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string
		empty  bool // the cache must stay empty
	}{
		{"--sha256 alone", []string{"fetch", "--sha256", strings.Repeat("ab", 32)}, 2, "", []string{"--sha256 checks the file at --url or --from"}, true},
		{"unknown model", []string{"fetch", "--model", "res2net50dd"}, 2, "", []string{"did you mean res2net50d.in1k?", "known models: res2net50_26w_4s, "}, true},
		{"offline, nothing cached", []string{"predict", "--offline", photo}, 1, "", append([]string{"no cached checkpoint of res2net50_26w_4s"}, hints...), true},
		{"download fails", []string{"fetch", "-q", "--url", hub.URL + "/missing.pth"}, 1, "", append([]string{"404 Not Found"}, hints...), true},
		{"import of another file", []string{"fetch", "--from", bad}, 1, "", []string{bad, "size mismatch"}, true},
		{"hub model from a local hub", []string{"fetch", "-q", "--model", "res2net50d", "--url", hub.URL + "/timm/res2net50d.in1k/resolve/main/model.safetensors"}, 0, filepath.Join(home, "res2net50d.in1k.safetensors"), nil, false},
		{"then offline, from its stamp", []string{"predict", "--model", "res2net50d", "--offline", photo}, 0, "coffee.png", nil, false},
		{"listed as cached", []string{"models", "--format", "json"}, 0, `"cached": "yes"`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := home
			if tt.empty {
				dir = t.TempDir()
			}
			code, stdout, stderr := runBinary(t, bin, []string{"RES2NET_HOME=" + dir, "TORCH_HOME=" + t.TempDir()}, tt.args...)
			ok := code == tt.code && strings.Contains(stdout, tt.stdout)
			for _, s := range tt.stderr {
				ok = ok && strings.Contains(stderr, s)
			}
			if !ok {
				t.Errorf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			if entries, _ := os.ReadDir(dir); tt.empty && len(entries) != 0 {
				t.Errorf("the cache holds %d files", len(entries))
			}
		})
	}

	// The listing says which model is cached, and only that one.
	cmd := exec.Command(bin, "models", "--format", "json")
	cmd.Env = append(os.Environ(), "RES2NET_HOME="+home)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var infos []modelInfo
	if err := json.Unmarshal(out, &infos); err != nil {
		t.Fatal(err)
	}
	for _, m := range infos {
		if want := m.Name == "res2net50d.in1k"; (m.Cached == "yes") != want {
			t.Errorf("%s: cached %q", m.Name, m.Cached)
		}
	}
}
