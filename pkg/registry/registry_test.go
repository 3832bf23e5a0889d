package registry

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/res2net/res2net/pkg/download"
	"github.com/res2net/res2net/pkg/model"
	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/ops/gemm"
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

func TestTorchHubDir(t *testing.T) {
	t.Setenv("TORCH_HOME", "/th")
	if dir, err := TorchHubDir(); err != nil || dir != "/th/hub/checkpoints" {
		t.Errorf("with TORCH_HOME: %q, %v", dir, err)
	}
	t.Setenv("TORCH_HOME", "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if dir, err := TorchHubDir(); err != nil || dir != "/xdg/torch/hub/checkpoints" {
		t.Errorf("with XDG_CACHE_HOME: %q, %v", dir, err)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if dir, err := TorchHubDir(); err != nil || dir != "/home/u/.cache/torch/hub/checkpoints" {
		t.Errorf("default: %q, %v", dir, err)
	}
}

func TestDefaultEntry(t *testing.T) {
	src := Default.Source()
	want := download.Source{URL: Default.URL, SHA256: Default.SHA256, Size: 95020747, Name: "res2net50_26w_4s_224-345170e8.pth"}
	if src != want {
		t.Errorf("Source() = %+v, want %+v", src, want)
	}
	if len(Default.Classes) != 10 || Default.Classes[0] != "tench" || Default.Classes[9] != "parachute" {
		t.Errorf("classes %q", Default.Classes)
	}
	if download.HashPrefix(path.Base(Default.URL)) != Default.SHA256[:8] {
		t.Errorf("URL %s and hash %s disagree", Default.URL, Default.SHA256)
	}
	if e, err := Lookup("res2net50_26w_4s"); err != nil || e.Name != Default.Name || e.Origin != "Holocron v0.2.1" {
		t.Errorf("the default's name gives %s (%s), %v", e.Name, e.Origin, err)
	}
	if All()[0].Name != Default.Name || Names()[0] != Default.Name {
		t.Error("the default is not listed first")
	}
}

// TestEntries checks every entry against FAMILY.md: names, counts,
// accuracies, URLs and how each file is verified.
func TestEntries(t *testing.T) {
	const gh = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-res2net/"
	tests := []struct {
		name   string
		params int64
		top1   float64
		url    string
		prefix string // "" for a hub file
	}{
		{"res2net50_26w_4s.in1k", 25699120, 77.994, gh + "res2net50_26w_4s-06e79181.pth", "06e79181"},
		{"res2net50_48w_2s.in1k", 25287304, 77.528, gh + "res2net50_48w_2s-afed724a.pth", "afed724a"},
		{"res2net50_14w_8s.in1k", 25059816, 78.142, gh + "res2net50_14w_8s-6527dddc.pth", "6527dddc"},
		{"res2net50_26w_6s.in1k", 37051448, 78.586, gh + "res2net50_26w_6s-19041792.pth", "19041792"},
		{"res2net50_26w_8s.in1k", 48403776, 78.950, gh + "res2net50_26w_8s-2c7c9f12.pth", "2c7c9f12"},
		{"res2net101_26w_4s.in1k", 45206688, 79.192, gh + "res2net101_26w_4s-02a759a1.pth", "02a759a1"},
		{"res2next50.in1k", 24671464, 78.238, gh + "res2next50_4s-6ef7e7bf.pth", "6ef7e7bf"},
		{"res2net50d.in1k", 25718352, 80.280, "https://huggingface.co/timm/res2net50d.in1k/resolve/main/model.safetensors", ""},
		{"res2net101d.in1k", 45225920, 81.236, "https://huggingface.co/timm/res2net101d.in1k/resolve/main/model.safetensors", ""},
	}
	if n := len(All()); n != 1+len(tests) {
		t.Errorf("%d entries, want %d", n, 1+len(tests))
	}
	files := map[string]string{Default.File: Default.Name}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Lookup(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if e.Params != tt.params || e.Top1 != tt.top1 || e.URL != tt.url || len(e.Classes) != 1000 || e.Dataset != "ImageNet-1k" {
				t.Errorf("got params %d top-1 %v url %s classes %d %s", e.Params, e.Top1, e.URL, len(e.Classes), e.Dataset)
			}
			if e.Resize != 256 || e.Crop != 224 || e.Interpolation != "bilinear" || e.Mean != imageNetMean || e.Std != imageNetStd {
				t.Errorf("transform %d/%d %s %v %v", e.Resize, e.Crop, e.Interpolation, e.Mean, e.Std)
			}
			src := e.Source()
			if tt.prefix != "" {
				if e.Verify != VerifyNamePrefix || src.SHA256Prefix != tt.prefix || src.Hub || e.File != path.Base(tt.url) {
					t.Errorf("verification %v, source %+v", e.Verify, src)
				}
			} else if e.Verify != VerifyHub || !src.Hub || src.SHA256Prefix != "" || e.File != tt.name+".safetensors" {
				t.Errorf("verification %v, source %+v", e.Verify, src)
			}
			if other, dup := files[e.File]; dup {
				t.Errorf("cache file %s also used by %s", e.File, other)
			}
			files[e.File] = e.Name
			if name, err := src.FileName(); err != nil || name != e.File {
				t.Errorf("FileName() = %q, %v", name, err)
			}
		})
	}
}

// TestConfigs: each entry's configuration is its architecture (the
// model package's preset of that name), has as many classes as labels, and
// has the published parameter count.
func TestConfigs(t *testing.T) {
	for _, e := range All() {
		preset := e.Arch
		if e.Name == Default.Name {
			preset = model.HolocronName
		}
		if cfg, ok := model.Preset(preset); !ok || cfg != e.Config {
			t.Errorf("%s: config %+v, preset %q gives %+v", e.Name, e.Config, preset, cfg)
		}
		if e.Config.Classes != len(e.Classes) {
			t.Errorf("%s: %d classes in the config, %d labels", e.Name, e.Config.Classes, len(e.Classes))
		}
		var params int64
		for _, l := range e.Config.Summary(e.Crop, e.Crop) {
			params += l.Params
		}
		if params != e.Params {
			t.Errorf("%s: the config has %d params, published %d", e.Name, params, e.Params)
		}
	}
}

func TestLookup(t *testing.T) {
	tests := []struct{ name, want string }{
		{"res2net50_26w_4s", "res2net50_26w_4s"},
		{"RES2NET50_26W_4S", "res2net50_26w_4s"},
		{"holocron/res2net50_26w_4s", "res2net50_26w_4s"},
		{"res2net50_26w_4s.in1k", "res2net50_26w_4s.in1k"},
		{"timm/res2net50_26w_4s", "res2net50_26w_4s.in1k"},
		{"timm/res2net50_26w_4s.in1k", "res2net50_26w_4s.in1k"},
		{"res2net50d", "res2net50d.in1k"},
		{"timm/res2net101d.in1k", "res2net101d.in1k"},
		{"res2next50", "res2next50.in1k"},
		{"res2net101_26w_4s", "res2net101_26w_4s.in1k"},
	}
	for _, tt := range tests {
		if e, err := Lookup(tt.name); err != nil || e.Name != tt.want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", tt.name, e.Name, err, tt.want)
		}
	}
}

func TestLookupUnknown(t *testing.T) {
	tests := []struct {
		name    string
		suggest string // "" for no suggestion
	}{
		{"res2net50dd", "did you mean res2net50d.in1k?"},
		{"res2net50_26w_4", "did you mean res2net50_26w_4s"},
		{"res2nxt50", "did you mean res2next50.in1k?"},
		{"resnet18", ""},
		{"", ""},
	}
	for _, tt := range tests {
		_, err := Lookup(tt.name)
		if !errors.Is(err, ErrUnknownModel) {
			t.Fatalf("Lookup(%q): %v, want ErrUnknownModel", tt.name, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "known models: "+strings.Join(Names(), ", ")) {
			t.Errorf("Lookup(%q): %q does not list the models", tt.name, msg)
		}
		if tt.suggest == "" && strings.Contains(msg, "did you mean") || !strings.Contains(msg, tt.suggest) {
			t.Errorf("Lookup(%q): %q, want suggestion %q", tt.name, msg, tt.suggest)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "ab", 2}, {"kitten", "sitting", 3}, {"res2net50d", "res2net50d", 0}, {"ab", "ba", 2},
	}
	for _, tt := range tests {
		if d := editDistance(tt.a, tt.b); d != tt.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, d, tt.d)
		}
	}
}

func TestIsPublished(t *testing.T) {
	timm, err := Lookup("res2net50_48w_2s")
	if err != nil {
		t.Fatal(err)
	}
	hub, err := Lookup("res2net50d")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sum := strings.Repeat("ab", 32)
	tests := []struct {
		name string
		e    Entry
		sum  string
		want bool
	}{
		{"Holocron, its digest", Default, strings.ToUpper(Default.SHA256), true},
		{"Holocron, another", Default, sum, false},
		{"timm, the prefix", timm, "afed724a" + strings.Repeat("0", 56), true},
		{"timm, another", timm, sum, false},
		{"hub, nothing cached", hub, sum, false},
	}
	for _, tt := range tests {
		if got := tt.e.IsPublished(tt.sum, dir); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	// A verified copy in the cache tells the hub file's digest.
	src := hub.Source()
	from := filepath.Join(t.TempDir(), "model.safetensors")
	if err := os.WriteFile(from, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	src.SHA256 = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881" // sha256("x")
	if _, err := download.Import(t.Context(), src, dir, from, download.Options{}); err != nil {
		t.Fatal(err)
	}
	if !hub.IsPublished(src.SHA256, dir) || hub.IsPublished(sum, dir) {
		t.Error("the stamped hub copy does not decide")
	}
}

func TestForConfig(t *testing.T) {
	for _, e := range All() {
		cfg := e.Config
		cfg.Precision = gemm.BF16
		if got, ok := ForConfig(cfg); !ok || got.Name != e.Name {
			t.Errorf("%s: ForConfig gives %q, %v", e.Name, got.Name, ok)
		}
	}
	// What model.Infer reads from each entry's state dict (shapes only)
	// finds the entry again.
	for _, e := range All() {
		tensors := map[string]*ops.Tensor{}
		for _, p := range e.Config.StateDict() {
			tensors[p.Name] = &ops.Tensor{Shape: p.Shape}
		}
		cfg, err := model.Infer(tensors)
		if err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
		if got, ok := ForConfig(cfg); !ok || got.Name != e.Name {
			t.Errorf("%s: the inferred config gives %q, %v", e.Name, got.Name, ok)
		}
	}
	narrow := model.Res2Net50()
	narrow.Classes = 3
	if e, ok := ForConfig(narrow); ok {
		t.Errorf("a 3-class head matches %s", e.Name)
	}
}
