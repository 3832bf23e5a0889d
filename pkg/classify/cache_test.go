package classify

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/res2net/res2net/pkg/checkpoint"
	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/ops/gemm"
	"github.com/res2net/res2net/pkg/packcache"
	"github.com/res2net/res2net/pkg/preprocess"
)

// copyCheckpoint copies src into a temporary directory and returns the
// copy's path.
func copyCheckpoint(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// photoBatch decodes the test photos for c.
func photoBatch(t *testing.T, c *Classifier) []*ops.Tensor {
	t.Helper()
	files, _ := photoLogits(t)
	var images []*ops.Tensor
	for _, f := range files {
		x, err := c.DecodeFile(filepath.Join(photosDir, f))
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, x)
	}
	return images
}

// photoLogitsOf runs c on the test photos.
func photoLogitsOf(t *testing.T, c *Classifier) []float32 {
	t.Helper()
	out, err := c.NewRunner(2).Logits(photoBatch(t, c))
	if err != nil {
		t.Fatal(err)
	}
	return out.Data
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d logits, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: logit %d is %v, want %v bit for bit", what, i, got[i], want[i])
		}
	}
}

func tinyOptions(cache *packcache.Cache, prec gemm.Precision) Options {
	opts := Options{Transform: preprocess.DefaultOptions(), Labels: tinyLabels, Cache: cache, Precision: prec}
	opts.Transform.Orient = false
	return opts
}

// cacheFile returns the cache file of the checkpoint at path, and whether
// it exists.
func cacheFile(t *testing.T, cache *packcache.Cache, path string, prec gemm.Precision) (string, bool) {
	t.Helper()
	id, err := packcache.Identify(path)
	if err != nil {
		t.Fatal(err)
	}
	file := cache.File(id, prec)
	_, err = os.Stat(file)
	return file, err == nil
}

// TestCacheMatchesUncached: every checkpoint format, loaded through the
// cache when it is built and when it is used, gives the logits of a load
// without it bit for bit, in both precisions.
func TestCacheMatchesUncached(t *testing.T) {
	precs := []gemm.Precision{gemm.FP32, gemm.BF16}
	for _, name := range []string{"tiny_legacy.pth", "tiny_zip.pth", "tiny_f16.pth", "tiny_wrapped.pth"} {
		for _, prec := range precs {
			t.Run(name+"/"+prec.String(), func(t *testing.T) {
				path := copyCheckpoint(t, filepath.Join(filepath.Dir(tinyWeights), name))
				plain, err := Load(path, tinyOptions(nil, prec))
				if err != nil {
					t.Fatal(err)
				}
				want := photoLogitsOf(t, plain)
				cache := &packcache.Cache{Dir: t.TempDir()}
				for _, pass := range []string{"building the cache", "from the cache"} {
					c, err := Load(path, tinyOptions(cache, prec))
					if err != nil {
						t.Fatalf("%s: %v", pass, err)
					}
					if c.Config() != plain.Config() {
						t.Fatalf("%s: config %+v, want %+v", pass, c.Config(), plain.Config())
					}
					sameBits(t, pass, photoLogitsOf(t, c), want)
					if _, ok := cacheFile(t, cache, path, prec); !ok {
						t.Fatalf("%s: no cache file", pass)
					}
				}
			})
		}
	}
}

// TestCacheKeepsCheckpointInfo: the warnings and the labels a checkpoint
// holds come with the network from the cache.
func TestCacheKeepsCheckpointInfo(t *testing.T) {
	ck, err := checkpoint.Load(tinyWeights)
	if err != nil {
		t.Fatal(err)
	}
	ck.Tensors["features.0.weight"].Data[0] = float32(math.NaN())
	labels := []string{"z0", "z1", "z2", "z3", "z4", "z5", "z6", "z7", "z8", "z9"}
	path := writeWithMetadata(t, ck.Tensors, labels, preprocess.DefaultOptions().Transform)
	cache := &packcache.Cache{Dir: t.TempDir()}
	for _, pass := range []string{"building the cache", "from the cache"} {
		var warnings []string
		opts := tinyOptions(cache, gemm.FP32)
		opts.LabelsOptional = true
		opts.Warn = func(msg string) { warnings = append(warnings, msg) }
		c, err := Load(path, opts)
		if err != nil {
			t.Fatalf("%s: %v", pass, err)
		}
		if !slices.Equal(c.Labels(), labels) {
			t.Errorf("%s: labels %q, want the checkpoint's", pass, c.Labels())
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], path) || !strings.Contains(warnings[0], "NaN") {
			t.Errorf("%s: warnings %q, want one about NaN naming the file", pass, warnings)
		}
	}
}

// TestCacheRebuilt: a damaged cache file, or one of a checkpoint that has
// changed since, is replaced by a good one, and the network is the
// checkpoint's.
func TestCacheRebuilt(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, ckpt, file string)
	}{
		{"flipped byte", func(t *testing.T, _, file string) {
			b, _ := os.ReadFile(file)
			b[len(b)-100] ^= 0x40
			os.WriteFile(file, b, 0o644)
		}},
		{"truncated", func(t *testing.T, _, file string) { os.Truncate(file, 5000) }},
		{"empty", func(t *testing.T, _, file string) { os.Truncate(file, 0) }},
		{"other version", func(t *testing.T, _, file string) {
			b, _ := os.ReadFile(file)
			b[8]++
			os.WriteFile(file, b, 0o644)
		}},
		{"checkpoint replaced", func(t *testing.T, ckpt, _ string) {
			// Another checkpoint at the same path: the same
			// network with the weights of the zip fixture halved.
			other, err := checkpoint.Load(filepath.Join(filepath.Dir(tinyWeights), "tiny_zip.pth"))
			if err != nil {
				t.Fatal(err)
			}
			for name, tensor := range other.Tensors {
				if strings.HasSuffix(name, "conv.0.weight") {
					for i := range tensor.Data {
						tensor.Data[i] /= 2
					}
				}
			}
			f, err := os.Create(ckpt + ".tmp")
			if err != nil {
				t.Fatal(err)
			}
			checkpoint.WriteSafetensors(f, other.Tensors, nil)
			f.Close()
			os.Rename(ckpt+".tmp", ckpt)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := copyCheckpoint(t, tinyWeights)
			cache := &packcache.Cache{Dir: t.TempDir()}
			if _, err := Load(path, tinyOptions(cache, gemm.FP32)); err != nil {
				t.Fatal(err)
			}
			file, ok := cacheFile(t, cache, path, gemm.FP32)
			if !ok {
				t.Fatal("no cache file")
			}
			time.Sleep(20 * time.Millisecond) // past the timestamp resolution
			tc.change(t, path, file)
			plain, err := Load(path, tinyOptions(nil, gemm.FP32))
			if err != nil {
				t.Fatal(err)
			}
			want := photoLogitsOf(t, plain)
			c, err := Load(path, tinyOptions(cache, gemm.FP32))
			if err != nil {
				t.Fatal(err)
			}
			sameBits(t, "after the change", photoLogitsOf(t, c), want)
			// The rebuilt file is good: a load that must use it
			// gives the same logits.
			id, _ := packcache.Identify(path)
			net, _, err := cache.Load(id, gemm.FP32)
			if err != nil {
				t.Fatalf("the rebuilt cache file: %v", err)
			}
			fromFile, err := newClassifier(net, tinyOptions(nil, gemm.FP32))
			if err != nil {
				t.Fatal(err)
			}
			sameBits(t, "the rebuilt file", photoLogitsOf(t, fromFile), want)
		})
	}
}

// TestCacheConcurrentLoads: loads at the same time, some building the
// cache file and some reading it, all get the checkpoint's network.
func TestCacheConcurrentLoads(t *testing.T) {
	path := copyCheckpoint(t, tinyWeights)
	plain, err := Load(path, tinyOptions(nil, gemm.FP32))
	if err != nil {
		t.Fatal(err)
	}
	want := photoLogitsOf(t, plain)
	cache := &packcache.Cache{Dir: t.TempDir()}
	var wg sync.WaitGroup
	loaded := make([]*Classifier, 6)
	errs := make([]error, len(loaded))
	for i := range loaded {
		wg.Go(func() { loaded[i], errs[i] = Load(path, tinyOptions(cache, gemm.FP32)) })
	}
	wg.Wait()
	for i, c := range loaded {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		sameBits(t, fmt.Sprintf("load %d", i), photoLogitsOf(t, c), want)
	}
	entries, _ := os.ReadDir(cache.Dir)
	if len(entries) != 1 {
		t.Errorf("%d files in the cache, want 1", len(entries))
	}
}
