package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCacheDir(t *testing.T) {
	t.Setenv("RES2NET_HOME", "/some/where")
	if dir, err := CacheDir(); err != nil || dir != "/some/where" {
		t.Errorf("with RES2NET_HOME: %q, %v", dir, err)
	}
	t.Setenv("RES2NET_HOME", "")
	base, err := os.UserCacheDir()
	if err != nil {
		t.Skip(err)
	}
	if dir, err := CacheDir(); err != nil || dir != filepath.Join(base, "res2net") {
		t.Errorf("default: %q, %v", dir, err)
	}
}

func TestDefaultEntry(t *testing.T) {
	src := Default.Source()
	if src.URL != Default.URL || src.SHA256 != Default.SHA256 || src.Size != 95020747 ||
		src.Name != "res2net50_26w_4s_224-345170e8.pth" {
		t.Errorf("Source() = %+v", src)
	}
	if len(Default.Classes) != 10 || Default.Classes[0] != "tench" || Default.Classes[9] != "parachute" {
		t.Errorf("classes %q", Default.Classes)
	}
	if !strings.HasSuffix(Default.URL, "/res2net50_26w_4s_224-345170e8.pth") || !strings.HasPrefix(Default.SHA256, "345170e8") {
		t.Errorf("URL %s and hash %s disagree", Default.URL, Default.SHA256)
	}
}
