package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

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
	cfg.Planes, cfg.StemChannels = [4]int{4, 8, 16, 32}, 8
	rep, err := inspectCheckpoint(tinyWeights, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Matches || rep.Problem != "" {
		t.Errorf("tiny checkpoint vs tiny config: %+v", rep)
	}
	if _, err := inspectCheckpoint(t.TempDir(), cfg); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("a directory: %v, want the loader's error", err)
	}
}

func TestInspectJSON(t *testing.T) {
	tests := []struct {
		name    string
		weights string
		matches bool
	}{
		{"architecture only", "", false},
		{"tiny checkpoint", tinyWeights, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, out, _ := testIO("")
			// A checkpoint that does not match is reported, and the run fails.
			err := runInspect(context.Background(), &inspectOptions{IO: ios, Model: modelFlags{Weights: tt.weights}, Format: "json"})
			if (err != nil) != (tt.weights != "" && !tt.matches) {
				t.Fatalf("runInspect: %v", err)
			}
			var rep inspectReport
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.TotalParams != wantParams || rep.TotalMACs != wantMACs {
				t.Errorf("totals %d params, %d MACs; want %d, %d", rep.TotalParams, rep.TotalMACs, wantParams, wantMACs)
			}
			var sum int64
			for _, l := range rep.Layers {
				sum += l.Params
			}
			if sum != rep.TotalParams {
				t.Errorf("layers sum to %d params, total says %d", sum, rep.TotalParams)
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
			if c == nil || c.Format != "legacy" || len(c.SHA256) != 64 || c.Tensors == 0 || c.Matches != tt.matches {
				t.Fatalf("checkpoint report %+v", c)
			}
			// The tiny model has the layout but not the widths: the problem
			// names a key and both shapes.
			if !strings.Contains(c.Problem, "features.0.weight") || !strings.Contains(c.Problem, "64x3x7x7") {
				t.Errorf("problem %q does not name the key and shapes", c.Problem)
			}
		})
	}
}
