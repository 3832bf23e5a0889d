package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/res2net/res2net/pkg/checkpoint"
	"github.com/res2net/res2net/pkg/model"
	"github.com/res2net/res2net/pkg/registry"
)

// The published architecture's totals, from testdata/reference/FACTS.md (PyTorch's count).
const (
	wantParams = 23670610
	wantMACs   = 4253118464 + 20480
)

func TestInspectText(t *testing.T) {
	ios, out, _ := testIO("")
	if err := runInspect(context.Background(), &inspectOptions{IO: ios, Format: "text"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Total parameters: 23,670,610 (23.67M)",
		"4.25 GMACs",
		"features.0 ", "features.4.0.conv.3.conv.2.0", "features.7.2.conv.5", "head ",
		"2048x7x7",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("inspect output lacks %q", want)
		}
	}
}

// TestInspectCheckpointMatches checks a checkpoint against the architecture
// it was made for: the tiny fixture against the tiny config.
func TestInspectCheckpointMatches(t *testing.T) {
	cfg := model.Res2Net50()
	rep, got, err := inspectCheckpoint(tinyWeights, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := cfg
	want.Planes, want.StemChannels = [4]int{4, 8, 16, 32}, 8
	if !rep.Matches || rep.Problem != "" || got != want {
		t.Errorf("tiny checkpoint: %+v, architecture %v", rep, got)
	}
	if _, _, err := inspectCheckpoint(t.TempDir(), cfg); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("a directory: %v, want the loader's error", err)
	}
}

func TestInspectJSON(t *testing.T) {
	// A damaged checkpoint: the tiny one without a key.
	damaged := filepath.Join(t.TempDir(), "damaged.safetensors")
	ck, err := checkpoint.Load(tinyWeights)
	if err != nil {
		t.Fatal(err)
	}
	delete(ck.Tensors, "features.5.1.conv.0.weight")
	var buf bytes.Buffer
	if err := checkpoint.WriteSafetensors(&buf, ck.Tensors, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(damaged, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	const tinyParams = 95_068 // testdata/README.md, PyTorch's count
	tests := []struct {
		name     string
		weights  string
		format   string
		params   int64
		model    string // substring of the report's model name
		matches  bool
		problems []string
	}{
		{name: "architecture only", params: wantParams, model: "res2net50_26w_4s", matches: true},
		{name: "tiny checkpoint", weights: tinyWeights, format: "legacy", params: tinyParams, model: "holocron layout", matches: true},
		{name: "tiny timm checkpoint", weights: "../../testdata/timm/d.safetensors", format: "safetensors",
			params: 94_448, model: "timm layout: layers [3 4 6 3], planes [4 8 16 32], 26w x 4s, deep stem (4, 4, 8), avgpool shortcut", matches: true},
		{name: "damaged checkpoint", weights: damaged, format: "safetensors", params: tinyParams, model: "holocron layout",
			problems: []string{"features.5.1.conv.0.weight: missing (shape 12x32x1x1 expected)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, out, _ := testIO("")
			// A checkpoint that does not match is reported, and the run fails.
			err := runInspect(context.Background(), &inspectOptions{IO: ios, Model: modelFlags{Weights: tt.weights}, Format: "json"})
			if (err != nil) != !tt.matches {
				t.Fatalf("runInspect: %v", err)
			}
			var rep inspectReport
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			var sum int64
			for _, l := range rep.Layers {
				sum += l.Params
			}
			if rep.TotalParams != tt.params || sum != rep.TotalParams {
				t.Errorf("total %d params, layers sum to %d; want %d", rep.TotalParams, sum, tt.params)
			}
			if tt.weights == "" && rep.TotalMACs != wantMACs {
				t.Errorf("total %d MACs, want %d", rep.TotalMACs, wantMACs)
			}
			if !strings.Contains(rep.Model, tt.model) {
				t.Errorf("model %q, want it to mention %q", rep.Model, tt.model)
			}
			// The published accuracy is the published file's, not the tiny one's.
			if (rep.Top1 != nil) != (tt.weights == "") || (rep.Top1 != nil && *rep.Top1 != registry.Default.Top1) {
				t.Errorf("published top-1 %v with --weights %q", rep.Top1, tt.weights)
			}
			if tt.weights == "" {
				if rep.Checkpoint != nil {
					t.Error("checkpoint report without --weights")
				}
				return
			}
			c := rep.Checkpoint
			if c == nil || c.Format != tt.format || len(c.SHA256) != 64 || c.Tensors == 0 || c.Matches != tt.matches {
				t.Fatalf("checkpoint report %+v", c)
			}
			if rep.Top1 != nil {
				t.Errorf("published accuracy %v shown for a file that is not the published one", *rep.Top1)
			}
			for _, p := range tt.problems {
				if !strings.Contains(c.Problem, p) {
					t.Errorf("problem %q does not say %q", c.Problem, p)
				}
			}
		})
	}
}

// TestInspectEveryModel inspects each published model from its
// configuration alone: the totals are the published parameter counts.
func TestInspectEveryModel(t *testing.T) {
	for _, name := range registry.Names() {
		t.Run(name, func(t *testing.T) {
			entry, err := lookupModel(name)
			if err != nil {
				t.Fatal(err)
			}
			ios, out, _ := testIO("")
			if err := runInspect(context.Background(), &inspectOptions{IO: ios, Model: modelFlags{Model: name}, Format: "json"}); err != nil {
				t.Fatal(err)
			}
			var rep inspectReport
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.TotalParams != entry.Params || rep.Top1 == nil || *rep.Top1 != entry.Top1 {
				t.Errorf("%d params, top-1 %v; want %d, %v", rep.TotalParams, rep.Top1, entry.Params, entry.Top1)
			}
		})
	}
}
