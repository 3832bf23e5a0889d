package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/res2net/res2net/pkg/download"
	"github.com/res2net/res2net/pkg/registry"
)

// writeStamped writes a file into dir under e's cache name with a stamp
// recording sum, as a verified download leaves it.
func writeStamped(t *testing.T, dir string, e registry.Entry, sum string) {
	t.Helper()
	p := filepath.Join(dir, e.File)
	if err := os.WriteFile(p, []byte("weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fmt.Sprintf(`{"sha256":%q,"size":%d,"mtime_ns":%d}`, sum, fi.Size(), fi.ModTime().UnixNano())
	if err := os.WriteFile(p+download.StampSuffix, []byte(st), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestModels(t *testing.T) {
	cache := t.TempDir()
	lookup := func(name string) registry.Entry {
		e, err := registry.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	// One verified (its stamp's digest has the prefix), one that fails
	// its check, one not checked yet.
	writeStamped(t, cache, lookup("res2net50_48w_2s"), "afed724a"+strings.Repeat("0", 56))
	writeStamped(t, cache, lookup("res2net50_14w_8s"), strings.Repeat("0", 64))
	if err := os.WriteFile(filepath.Join(cache, lookup("res2net50d").File), []byte("w"), 0o644); err != nil {
		t.Fatal(err)
	}

	ios, out, _ := testIO("")
	if err := runModels(&modelsOptions{IO: ios, Format: "json", Cache: cache}); err != nil {
		t.Fatal(err)
	}
	var infos []modelInfo
	if err := json.Unmarshal(out.Bytes(), &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 10 || !infos[0].Default || infos[0].Name != registry.Default.Name {
		t.Fatalf("%d models, first %+v", len(infos), infos[0])
	}
	want := map[string]struct {
		classes int
		params  int64
		cached  string
	}{
		"res2net50_26w_4s":       {10, 23670610, "no"},
		"res2net50_48w_2s.in1k":  {1000, 25287304, "yes"},
		"res2net50_14w_8s.in1k":  {1000, 25059816, "mismatch"},
		"res2net50d.in1k":        {1000, 25718352, "unchecked"},
		"res2net101_26w_4s.in1k": {1000, 45206688, "no"},
		"res2next50.in1k":        {1000, 24671464, "no"},
	}
	for _, m := range infos {
		w, ok := want[m.Name]
		if !ok {
			continue
		}
		if m.Classes != w.classes || m.Params != w.params || m.Cached != w.cached || (m.Cached != "no") != (m.CachedPath != "") {
			t.Errorf("%s: %+v, want %+v", m.Name, m, w)
		}
	}

	ios, out, _ = testIO("")
	if err := runModels(&modelsOptions{IO: ios, Format: "text", Cache: cache}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 13 || !strings.HasPrefix(lines[1], "res2net50_26w_4s (default)") || lines[12] != "Cache: "+cache {
		t.Fatalf("table:\n%s", out)
	}
	// Every row ends its PARAMS column where the header does.
	end := strings.Index(lines[0], "PARAMS") + len("PARAMS")
	for _, l := range lines[1:11] {
		if l[end-1] < '0' || l[end-1] > '9' || l[end] != ' ' {
			t.Errorf("misaligned row %q", l)
		}
	}
	if !strings.Contains(out.String(), "res2net101d.in1k") || !strings.Contains(out.String(), "45,225,920   81.24%  ImageNet-1k  timm") {
		t.Errorf("table:\n%s", out)
	}

	ios, _, errOut := testIO("")
	if code := execute(t.Context(), ios, []string{"models", "--format", "xml"}); code != 2 {
		t.Errorf("--format xml: exit %d, %s", code, errOut)
	}
}
