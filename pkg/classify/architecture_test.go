package classify

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/res2net/res2net/pkg/checkpoint"
	"github.com/res2net/res2net/pkg/model"
	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/packcache"
	"github.com/res2net/res2net/pkg/preprocess"
)

// TestLoadByArchitecture: ByArchitecture is asked about the configuration
// model.Infer reads from the file, its options replace the caller's when it
// knows it, and the checkpoint's recorded labels and transform still come
// before them.
func TestLoadByArchitecture(t *testing.T) {
	ckpt, err := checkpoint.Load(tinyWeights)
	if err != nil {
		t.Fatal(err)
	}
	want, err := model.Infer(ckpt.Tensors)
	if err != nil {
		t.Fatal(err)
	}
	known := Options{Transform: preprocess.DefaultOptions(), Labels: tinyLabels, LabelsOptional: true, CheckpointTransform: true}
	known.Transform.Transform = preprocess.TimmTransform(224, 0.875)
	recorded := []string{"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"}
	recordedTransform := preprocess.TimmTransform(192, 0.95)
	withMeta := writeWithMetadata(t, ckpt.Tensors, recorded, recordedTransform)

	tests := []struct {
		name       string
		path       string
		knows      bool
		wantLabel0 string
		wantResize int
	}{
		{"known", tinyWeights, true, "a", 256},
		{"unknown", tinyWeights, false, "class 0", 232},
		{"known, recorded in the file", withMeta, true, "r0", recordedTransform.Resize},
		{"unknown, recorded in the file", withMeta, false, "r0", recordedTransform.Resize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := &packcache.Cache{Dir: t.TempDir()}
			for _, pass := range []struct {
				name  string
				cache *packcache.Cache
			}{{"no cache", nil}, {"building the cache", cache}, {"from the cache", cache}} {
				var asked []model.Config
				opts := Options{Transform: preprocess.DefaultOptions(), LabelsOptional: true, CheckpointTransform: true, Cache: pass.cache,
					ByArchitecture: func(cfg model.Config) (Options, bool) {
						asked = append(asked, cfg)
						return known, tt.knows
					}}
				c, err := Load(tt.path, opts)
				if err != nil {
					t.Fatalf("%s: %v", pass.name, err)
				}
				if !slices.Equal(asked, []model.Config{want}) {
					t.Errorf("%s: ByArchitecture asked about %+v, want once about %+v", pass.name, asked, want)
				}
				if c.Labels()[0] != tt.wantLabel0 || c.Transform().Resize != tt.wantResize {
					t.Errorf("%s: labels %v, resize %d; want %q first, resize %d", pass.name, c.Labels(), c.Transform().Resize, tt.wantLabel0, tt.wantResize)
				}
			}
		})
	}
}

// writeWithMetadata writes tensors as a safetensors file that records
// labels and a transform, and returns its path.
func writeWithMetadata(t *testing.T, tensors map[string]*ops.Tensor, labels []string, tr preprocess.Transform) string {
	t.Helper()
	meta, err := Metadata(labels, tr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "meta.safetensors")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.WriteSafetensors(f, tensors, meta); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
