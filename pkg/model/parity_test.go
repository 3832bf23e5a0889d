package model

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/res2net/res2net/internal/npy"
	"github.com/res2net/res2net/internal/paritytest"
	"github.com/res2net/res2net/pkg/checkpoint"
	"github.com/res2net/res2net/pkg/ops"
)

// Fixtures written by scripts/make_fixtures.py from PyTorch (eval mode).
const (
	tinyDir   = "../../testdata/tiny"
	photosDir = "../../testdata/photos"
)

// readNpy reads a committed fixture.
func readNpy(t *testing.T, path string) *ops.Tensor {
	t.Helper()
	x, err := npy.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// loadTiny builds the tiny fixture model from one of its checkpoints,
// taking the class count from the head as the CLI does.
func loadTiny(t *testing.T, file string) *Runner {
	t.Helper()
	ck, err := checkpoint.Load(filepath.Join(tinyDir, file))
	if err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig()
	cfg.Classes = 0
	return newRunner(t, cfg, ck.Tensors)
}

// TestParityTiny compares logits with PyTorch's for every
// serialisation of the tiny checkpoint (half-precision ones against the
// logits of the model with rounded weights) and for an odd input size.
func TestParityTiny(t *testing.T) {
	tests := []struct{ checkpoint, input, logits string }{
		{"tiny_zip.pth", "input.npy", "logits.npy"},
		{"tiny_legacy.pth", "input.npy", "logits.npy"},
		{"tiny_wrapped.pth", "input.npy", "logits.npy"},
		{"tiny_f16.pth", "input.npy", "logits_f16.npy"},
		{"tiny_bf16.pth", "input.npy", "logits_bf16.npy"},
		{"tiny_zip.pth", "input_odd.npy", "logits_odd.npy"},
	}
	for _, tc := range tests {
		t.Run(tc.checkpoint+"/"+tc.input, func(t *testing.T) {
			x := readNpy(t, filepath.Join(tinyDir, tc.input))
			want := readNpy(t, filepath.Join(tinyDir, tc.logits))
			assertParity(t, loadTiny(t, tc.checkpoint), x, want, 1, 2)
		})
	}
}

// TestParityFullSize checks Res2Net-50 itself against PyTorch on the seeded
// full-size checkpoint of scripts/make_parity.py, which is too big to
// commit. `make parity` runs it by setting RES2NET_PARITY_DIR.
func TestParityFullSize(t *testing.T) {
	dir := paritytest.Dir(t)
	path := filepath.Join(dir, "full.pth")
	x := readNpy(t, filepath.Join(dir, "input.npy"))
	want := readNpy(t, filepath.Join(dir, "logits.npy"))
	ck, err := checkpoint.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := newRunner(t, Res2Net50(), ck.Tensors).Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	assertLogits(t, got, want, 1e-4)
}

// timmDir holds the tiny timm-layout fixtures of scripts/make_timm_fixtures.py.
const timmDir = "../../testdata/timm"

// timmManifest is testdata/timm/manifest.json: each kind's configuration
// as the fixture script built it.
type timmManifest map[string]struct {
	Config struct {
		Layers, Planes                            [4]int
		Stem, Shortcut, Layout                    string
		StemWidth, StemChannels, BaseWidth, Scale int
		Cardinality, Classes                      int
	}
	Params int64
}

func readTimmManifest(t *testing.T) timmManifest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(timmDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m timmManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	return m
}

// TestTinyKindsMatchFixtures checks that tinyKinds and the fixture script
// describe the same networks, so that the parity test covers every kind.
func TestTinyKindsMatchFixtures(t *testing.T) {
	manifest := readTimmManifest(t)
	kinds := tinyKinds()
	if len(manifest) != len(kinds) {
		t.Errorf("%d fixture kinds, %d in tinyKinds", len(manifest), len(kinds))
	}
	for _, k := range kinds {
		m, ok := manifest[k.name]
		if !ok {
			t.Errorf("%s: no fixture", k.name)
			continue
		}
		c := m.Config
		want := Config{Layers: c.Layers, Planes: c.Planes, StemWidth: c.StemWidth, StemChannels: c.StemChannels,
			BaseWidth: c.BaseWidth, Scale: c.Scale, Cardinality: c.Cardinality, Classes: c.Classes, Layout: LayoutTimm}
		if c.Stem == "deep" {
			want.Stem = StemDeep
		}
		if c.Shortcut == "avgpool" {
			want.Shortcut = ShortcutAvgPool
		}
		if k.cfg != want || c.Layout != "timm" {
			t.Errorf("%s: tinyKinds has %+v, the fixture %+v", k.name, k.cfg, c)
		}
		var params int64
		for _, l := range k.cfg.Summary(35, 29) {
			params += l.Params
		}
		if params != m.Params {
			t.Errorf("%s: Summary counts %d parameters, PyTorch %d", k.name, params, m.Params)
		}
	}
}

// TestParityTimmTiny loads each tiny timm-layout checkpoint with nothing
// but the file: Infer must find the kind's configuration, and the logits
// must be PyTorch's.
func TestParityTimmTiny(t *testing.T) {
	x := readNpy(t, filepath.Join(timmDir, "input.npy"))
	for _, k := range tinyKinds() {
		t.Run(k.name, func(t *testing.T) {
			want := readNpy(t, filepath.Join(timmDir, k.name+".logits.npy"))
			for _, ext := range []string{".pth", ".safetensors"} {
				runParity(t, filepath.Join(timmDir, k.name+ext), k.cfg, x, want, 1, 2)
			}
		})
	}
}

// runParity loads path, infers its configuration (which must be cfg), and
// compares the logits on x with want at each thread count.
func runParity(t *testing.T, path string, cfg Config, x, want *ops.Tensor, threads ...int) {
	t.Helper()
	ck, err := checkpoint.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Infer(ck.Tensors)
	if err != nil {
		t.Fatal(err)
	}
	if got != cfg {
		t.Fatalf("Infer = %+v, want %+v", got, cfg)
	}
	assertParity(t, newRunner(t, got, ck.Tensors), x, want, threads...)
}

// assertParity runs x through r at each thread count and compares the
// logits with PyTorch's, want, within the parity tolerance.
func assertParity(t *testing.T, r *Runner, x, want *ops.Tensor, threads ...int) {
	t.Helper()
	for _, n := range threads {
		r.SetThreads(n)
		got, err := r.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		assertLogits(t, got, want, 1e-4)
	}
}

// TestParityTimmFullSize checks every published timm variant against
// PyTorch on the seeded full-size checkpoints that `make parity` writes
// with scripts/make_timm_fixtures.py --full into $RES2NET_PARITY_DIR/timm.
func TestParityTimmFullSize(t *testing.T) {
	dir := filepath.Join(paritytest.Dir(t), "timm")
	x := readNpy(t, filepath.Join(dir, "input.npy"))
	for _, name := range PresetNames() {
		if name == HolocronName {
			continue
		}
		t.Run(name, func(t *testing.T) {
			cfg, _ := Preset(name)
			want := readNpy(t, filepath.Join(dir, name+".logits.npy"))
			for _, ext := range []string{".pth", ".safetensors"} {
				start := time.Now()
				runParity(t, filepath.Join(dir, name+ext), cfg, x, want, 2)
				t.Logf("%s%s: loaded and run in %v", name, ext, time.Since(start).Round(time.Millisecond))
			}
		})
	}
}
