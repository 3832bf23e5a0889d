package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/res2net/res2net/pkg/model"
	"github.com/res2net/res2net/pkg/ops/gemm"
	"github.com/res2net/res2net/pkg/registry"
)

// tinyTimm is a tiny checkpoint of timm's layout whose widths are no
// published model's.
const tinyTimm = "../../testdata/timm/d.safetensors"

func TestArchEntry(t *testing.T) {
	timm50d, err := registry.Lookup("res2net50d")
	if err != nil {
		t.Fatal(err)
	}
	pets := timm50d.Config
	pets.Classes = 37
	holocron1k := registry.Default.Config
	holocron1k.Classes = 1000
	bf16 := timm50d.Config
	bf16.Precision = gemm.BF16
	narrow := timm50d.Config
	narrow.Planes = [4]int{4, 8, 16, 32}
	holocronAsTimm := registry.Default.Config
	holocronAsTimm.Layout = timm50d.Config.Layout
	tests := []struct {
		name string
		cfg  model.Config
		want string // "": none
	}{
		{"fine-tuned head", pets, timm50d.Name},
		{"Holocron's layout, 1000 classes", holocron1k, registry.Default.Name},
		{"bf16", bf16, timm50d.Name},
		{"narrower", narrow, ""},
		{"timm's layout, Holocron's classes", holocronAsTimm, "res2net50_26w_4s.in1k"},
	}
	for _, e := range registry.All() {
		tests = append(tests, struct {
			name string
			cfg  model.Config
			want string
		}{e.Name, e.Config, e.Name})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := archEntry(tt.cfg)
			if ok != (tt.want != "") || e.Name != tt.want {
				t.Errorf("archEntry = %q, %v; want %q", e.Name, ok, tt.want)
			}
		})
	}
}

// TestLoadOptions: which labels and transform a checkpoint is loaded with,
// from the flags and the architecture read from the file (no weights
// needed: the options' ByArchitecture is asked as classify.Load would).
func TestLoadOptions(t *testing.T) {
	labels := filepath.Join(t.TempDir(), "labels.txt")
	if err := os.WriteFile(labels, []byte("cat\ndog\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	timm50d, err := registry.Lookup("res2net50d")
	if err != nil {
		t.Fatal(err)
	}
	pets := timm50d.Config
	pets.Classes = 37
	narrow := timm50d.Config
	narrow.Planes = [4]int{4, 8, 16, 32}
	const file = "x.safetensors"
	tests := []struct {
		name      string
		model     modelFlags
		transform transformFlags
		cfg       model.Config // what the file holds
		// want: the labels' count and first name (0: "class N"), whether
		// they give way to a wrong count, the sizes, whether the
		// checkpoint's own transform may apply.
		labels, resize, crop int
		first                string
		optional, ckptTr     bool
	}{
		{"timm file", modelFlags{Weights: file}, transformFlags{}, timm50d.Config, 1000, 256, 224, "tench", true, true},
		{"timm file, --crop", modelFlags{Weights: file}, transformFlags{Crop: 192}, timm50d.Config, 1000, 256, 192, "tench", true, false},
		{"timm file, --resize", modelFlags{Weights: file}, transformFlags{Resize: 300}, timm50d.Config, 1000, 300, 224, "tench", true, false},
		{"timm file, --labels", modelFlags{Weights: file, Labels: labels}, transformFlags{}, timm50d.Config, 2, 256, 224, "cat", false, true},
		{"timm backbone, other head", modelFlags{Weights: file}, transformFlags{}, pets, 1000, 256, 224, "tench", true, true},
		{"Holocron file", modelFlags{Weights: file}, transformFlags{}, registry.Default.Config, 10, 232, 224, "tench", true, true},
		{"unknown architecture", modelFlags{Weights: file}, transformFlags{}, narrow, 0, 232, 224, "", true, true},
		{"unknown architecture, --labels", modelFlags{Weights: file, Labels: labels}, transformFlags{}, narrow, 2, 232, 224, "cat", false, true},
		{"--model named", modelFlags{Model: registry.Default.Name, Weights: file}, transformFlags{}, timm50d.Config, 10, 232, 224, "tench", true, true},
		{"--model, no file", modelFlags{Model: "res2net50d"}, transformFlags{}, registry.Default.Config, 1000, 256, 224, "tench", true, true},
		{"default model, no file", modelFlags{}, transformFlags{}, timm50d.Config, 10, 232, 224, "tench", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _ := testIO("")
			entry, err := tt.model.entry()
			if err != nil {
				t.Fatal(err)
			}
			opts, err := loadOptions(ios, &tt.model, entry, tt.transform.options)
			if err != nil {
				t.Fatal(err)
			}
			if opts.ByArchitecture != nil {
				if known, ok := opts.ByArchitecture(tt.cfg); ok {
					opts = known
				}
			}
			first := ""
			if len(opts.Labels) > 0 {
				first = opts.Labels[0]
			}
			tr := opts.Transform
			if len(opts.Labels) != tt.labels || first != tt.first || opts.LabelsOptional != tt.optional ||
				tr.Resize != tt.resize || tr.Crop != tt.crop || opts.CheckpointTransform != tt.ckptTr {
				t.Errorf("%d labels from %q (optional %v), resize %d crop %d (checkpoint's %v); want %d from %q (%v), %d %d (%v)",
					len(opts.Labels), first, opts.LabelsOptional, tr.Resize, tr.Crop, opts.CheckpointTransform,
					tt.labels, tt.first, tt.optional, tt.resize, tt.crop, tt.ckptTr)
			}
		})
	}
}

// TestBinaryWeightsLabels runs the built command on tiny checkpoints no
// published model has the architecture of: "class N", unless --labels
// names the classes (their count checked), and inspect claims no
// published accuracy.
func TestBinaryWeightsLabels(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	ten := filepath.Join(dir, "ten.txt")
	three := filepath.Join(dir, "three.txt")
	var names []string
	for i := range 10 {
		names = append(names, fmt.Sprintf("thing%02d", i))
	}
	if err := os.WriteFile(ten, []byte(strings.Join(names, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(three, []byte("a\nb\nc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	photo := filepath.Join(photosDir, "astronaut.jpg")
	for _, weights := range []string{tinyWeights, tinyTimm} {
		tests := []struct {
			name   string
			args   []string
			code   int
			label  string // every predicted label starts with it
			stderr string
		}{
			{"class N", []string{"predict", "-w", weights, "-k", "10", "-f", "csv", photo}, 0, "class ", ""},
			{"--labels", []string{"predict", "-w", weights, "--labels", ten, "-k", "10", "-f", "csv", photo}, 0, "thing", ""},
			{"--labels count", []string{"predict", "-w", weights, "--labels", three, photo}, 1, "", "3 labels for a network with 10 classes"},
		}
		for _, tt := range tests {
			t.Run(filepath.Base(weights)+"/"+tt.name, func(t *testing.T) {
				code, stdout, stderr := runBinary(t, bin, []string{"RES2NET_HOME=" + t.TempDir()}, tt.args...)
				if code != tt.code || !strings.Contains(stderr, tt.stderr) {
					t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
				}
				if tt.label == "" {
					return
				}
				rows := strings.Split(strings.TrimSpace(stdout), "\n")[1:]
				seen := map[string]bool{}
				for _, row := range rows {
					label := strings.Split(row, ",")[3]
					if !strings.HasPrefix(label, tt.label) {
						t.Errorf("label %q, want %q...", label, tt.label)
					}
					seen[label] = true
				}
				if len(seen) != 10 {
					t.Errorf("%d distinct labels in\n%s", len(seen), stdout)
				}
			})
		}
		t.Run(filepath.Base(weights)+"/inspect", func(t *testing.T) {
			code, out, stderr := runBinary(t, bin, []string{"RES2NET_HOME=" + t.TempDir()}, "inspect", "-w", weights, "--format", "json")
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			var rep map[string]any
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			if _, ok := rep["published_top1"]; ok || rep["checkpoint"] == nil {
				t.Errorf("report %s: want a checkpoint and no published accuracy", out)
			}
		})
	}
}
