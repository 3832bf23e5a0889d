package model

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/res2net/res2net/internal/npy"
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
			m := loadTiny(t, tc.checkpoint)
			for _, threads := range []int{1, 2} {
				m.SetThreads(threads)
				got, err := m.Forward(x)
				if err != nil {
					t.Fatal(err)
				}
				assertLogits(t, got, want, 1e-4)
			}
		})
	}
}

// TestParityFullSize checks Res2Net-50 itself against PyTorch on the seeded
// full-size checkpoint of scripts/make_parity.py, which is too big to
// commit. `make parity` runs it by setting RES2NET_PARITY_DIR.
func TestParityFullSize(t *testing.T) {
	dir := os.Getenv("RES2NET_PARITY_DIR")
	if dir == "" {
		t.Skip("RES2NET_PARITY_DIR not set; run make parity")
	}
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
