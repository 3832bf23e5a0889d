package packcache

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/res2net/res2net/pkg/model"
	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/ops/gemm"
)

// testConfigs are small networks with every kind of conv: the Holocron
// layout, and timm's with a deep stem, the average-pool shortcut and
// grouped branch convs.
func testConfigs() map[string]model.Config {
	holocron := probeConfig()
	timm := holocron
	timm.Layout, timm.Stem, timm.StemWidth, timm.Shortcut = model.LayoutTimm, model.StemDeep, 4, model.ShortcutAvgPool
	timm.Layers, timm.Cardinality, timm.BaseWidth = [4]int{2, 1, 1, 2}, 2, 16
	return map[string]model.Config{"holocron": holocron, "timm grouped": timm}
}

// newNet builds cfg from seeded weights.
func newNet(t *testing.T, cfg model.Config, seed uint32) *model.Network {
	t.Helper()
	net, err := model.New(cfg, seededStateDict(cfg, lcg(seed)))
	if err != nil {
		t.Fatal(err)
	}
	return net
}

// logits runs net on a fixed batch of two 32x32 inputs.
func logits(t *testing.T, net *model.Network) []float32 {
	t.Helper()
	x := ops.New(2, 3, 32, 32)
	lcg(99)(x.Data)
	out, err := net.NewRunner().Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	return out.Data
}

// sameBits fails unless a and b are equal bit for bit.
func sameBits(t *testing.T, a, b []float32) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d logits, want %d", len(a), len(b))
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("logit %d is %v, want %v bit for bit", i, a[i], b[i])
		}
	}
}

// checkpointFile writes a stand-in checkpoint (packcache reads only its
// identity) and returns its path and identity.
func checkpointFile(t testing.TB, dir, content string) (string, Identity) {
	t.Helper()
	path := filepath.Join(dir, "model.pth")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	id, err := Identify(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, id
}

func precisions() []gemm.Precision {
	if gemm.HasBF16() {
		return []gemm.Precision{gemm.FP32, gemm.BF16}
	}
	return []gemm.Precision{gemm.FP32}
}

// TestRoundTrip: a network loaded from its cache file gives the logits of
// the network it was stored from, bit for bit, with the info stored.
func TestRoundTrip(t *testing.T) {
	for name, cfg := range testConfigs() {
		for _, prec := range precisions() {
			t.Run(name+"/"+prec.String(), func(t *testing.T) {
				cfg.Precision = prec
				net := newNet(t, cfg, 7)
				c := &Cache{Dir: t.TempDir()}
				_, id := checkpointFile(t, t.TempDir(), "weights")
				info := Info{Warnings: []string{"w1"}, Metadata: map[string]string{"k": "v"}}
				if err := c.Store(id, net, info); err != nil {
					t.Fatal(err)
				}
				got, gotInfo, err := c.Load(id, prec)
				if err != nil {
					t.Fatal(err)
				}
				if got.Config() != net.Config() {
					t.Errorf("config %+v, want %+v", got.Config(), net.Config())
				}
				if len(gotInfo.Warnings) != 1 || gotInfo.Warnings[0] != "w1" || gotInfo.Metadata["k"] != "v" {
					t.Errorf("info %+v, want the stored %+v", gotInfo, info)
				}
				sameBits(t, logits(t, got), logits(t, net))
				if other := 1 - prec; len(precisions()) == 2 {
					if _, _, err := c.Load(id, other); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("load in %v: %v, want no file (one file per precision)", other, err)
					}
				}
			})
		}
	}
}

// stored returns a cache with the file of a small network, its path and
// the checkpoint's identity.
func stored(t *testing.T) (*Cache, string, Identity) {
	t.Helper()
	c := &Cache{Dir: t.TempDir()}
	_, id := checkpointFile(t, t.TempDir(), "weights")
	if err := c.Store(id, newNet(t, probeConfig(), 3), Info{}); err != nil {
		t.Fatal(err)
	}
	return c, c.File(id, gemm.FP32), id
}

// rewriteHeader replaces the header of the cache file at path with what
// edit makes of it, with a valid checksum, keeping the data in place.
func rewriteHeader(t *testing.T, path string, edit func(*header)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hlen := binary.LittleEndian.Uint64(b[16:])
	dataOff := binary.LittleEndian.Uint64(b[24:])
	var h header
	if err := json.Unmarshal(b[prefixSize:prefixSize+hlen], &h); err != nil {
		t.Fatal(err)
	}
	edit(&h)
	raw, err := json.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	if prefixSize+uint64(len(raw)) > dataOff {
		t.Fatal("edited header does not fit")
	}
	binary.LittleEndian.PutUint32(b[12:], crc32.ChecksumIEEE(raw))
	binary.LittleEndian.PutUint64(b[16:], uint64(len(raw)))
	copy(b[prefixSize:dataOff], make([]byte, dataOff-prefixSize))
	copy(b[prefixSize:], raw)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDamaged: a cache file that is damaged, of another version or layout,
// or lies about its arrays is refused with ErrCorrupt or ErrStale, never
// used and never a panic.
func TestDamaged(t *testing.T) {
	edit := func(f func(b []byte) []byte) func(*testing.T, string) {
		return func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, f(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	inHeader := func(f func(*header)) func(*testing.T, string) {
		return func(t *testing.T, path string) { rewriteHeader(t, path, f) }
	}
	tests := []struct {
		name   string
		damage func(*testing.T, string)
		want   error
	}{
		{"flipped data byte", edit(func(b []byte) []byte { b[len(b)-4096] ^= 0x10; return b }), ErrCorrupt},
		{"flipped first data byte", edit(func(b []byte) []byte {
			b[binary.LittleEndian.Uint64(b[24:])] ^= 1
			return b
		}), ErrCorrupt},
		{"flipped header byte", edit(func(b []byte) []byte { b[prefixSize+5] ^= 0x20; return b }), ErrCorrupt},
		{"truncated data", edit(func(b []byte) []byte { return b[:len(b)-1] }), ErrCorrupt},
		{"truncated header", edit(func(b []byte) []byte { return b[:100] }), ErrCorrupt},
		{"prefix only", edit(func(b []byte) []byte { return b[:prefixSize-1] }), ErrCorrupt},
		{"empty", edit(func([]byte) []byte { return nil }), ErrCorrupt},
		{"extended", edit(func(b []byte) []byte { return append(b, 0) }), ErrCorrupt},
		{"bad magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), ErrCorrupt},
		{"other version", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], Version+1); return b }), ErrStale},
		{"huge header length", edit(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[16:], math.MaxUint64); return b }), ErrCorrupt},
		{"unaligned data", edit(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[24:], 4097); return b }), ErrCorrupt},
		{"other layout", inHeader(func(h *header) { h.Layout += "x" }), ErrStale},
		{"other precision", inHeader(func(h *header) { h.Config.Precision = gemm.BF16 }), ErrStale},
		{"array past the end", inHeader(func(h *header) { h.Arrays[3].Offset = h.DataLen }), ErrCorrupt},
		{"negative offset", inHeader(func(h *header) { h.Arrays[1].Offset = -8 }), ErrCorrupt},
		{"overflowing length", inHeader(func(h *header) { h.Arrays[2].Len = math.MaxInt64 }), ErrCorrupt},
		{"wrong array size", inHeader(func(h *header) { h.Arrays[1].Len-- }), ErrCorrupt},
		{"array missing", inHeader(func(h *header) { h.Arrays = h.Arrays[1:] }), ErrCorrupt},
		{"array repeated", inHeader(func(h *header) { h.Arrays[1].Name = h.Arrays[3].Name }), ErrCorrupt},
		{"other config", inHeader(func(h *header) { h.Config.Planes[3]++ }), ErrCorrupt},
		{"invalid config", inHeader(func(h *header) { h.Config.Scale = 0 }), ErrCorrupt},
		{"checksums missing", inHeader(func(h *header) { h.CRC = h.CRC[:len(h.CRC)-1] }), ErrCorrupt},
		{"data length lies", inHeader(func(h *header) { h.DataLen -= 64 }), ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, path, id := stored(t)
			tc.damage(t, path)
			net, _, err := c.Load(id, gemm.FP32)
			if !errors.Is(err, tc.want) || net != nil {
				t.Fatalf("load: %v, want %v", err, tc.want)
			}
			// Stored again, the file is good.
			if err := c.Store(id, newNet(t, probeConfig(), 3), Info{}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.Load(id, gemm.FP32); err != nil {
				t.Fatalf("after storing again: %v", err)
			}
		})
	}
}

// TestChangedCheckpoint: a checkpoint rewritten in place, replaced by
// another file, or touched makes its cache file stale.
func TestChangedCheckpoint(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, path string)
	}{
		{"rewritten in place", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte("W"), 0) // the same size
			f.Close()
		}},
		{"replaced", func(t *testing.T, path string) {
			tmp := path + ".new"
			os.WriteFile(tmp, []byte("weights"), 0o644)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"touched", func(t *testing.T, path string) {
			if err := os.Chtimes(path, time.Now(), time.Now().Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
		}},
		{"grown", func(t *testing.T, path string) {
			os.WriteFile(path, []byte("weights and more"), 0o644)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Cache{Dir: t.TempDir()}
			path, id := checkpointFile(t, t.TempDir(), "weights")
			if err := c.Store(id, newNet(t, probeConfig(), 3), Info{}); err != nil {
				t.Fatal(err)
			}
			// Past the file system's timestamp resolution, so that
			// the change moves the times.
			time.Sleep(20 * time.Millisecond)
			tc.change(t, path)
			now, err := Identify(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.Load(now, gemm.FP32); !errors.Is(err, ErrStale) {
				t.Fatalf("load after the change: %v, want ErrStale", err)
			}
			if _, _, err := c.Load(id, gemm.FP32); err != nil {
				t.Fatalf("load with the old identity: %v", err)
			}
		})
	}
}

// TestRecentCheckpoint: a checkpoint changed within MinAge is not stored.
func TestRecentCheckpoint(t *testing.T) {
	c := New(t.TempDir())
	_, id := checkpointFile(t, t.TempDir(), "weights")
	if err := c.Store(id, newNet(t, probeConfig(), 3), Info{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.File(id, gemm.FP32)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a checkpoint written just now was cached (%v)", err)
	}
	id.at = id.at.Add(DefaultMinAge)
	if err := c.Store(id, newNet(t, probeConfig(), 3), Info{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Load(id, gemm.FP32); err != nil {
		t.Fatalf("stored once old enough: %v", err)
	}
}

// TestConcurrent: stores and loads at the same time of the same file see
// a whole file, and a network mapped from a file that is replaced keeps
// working.
func TestConcurrent(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	_, id := checkpointFile(t, t.TempDir(), "weights")
	net := newNet(t, probeConfig(), 3)
	want := logits(t, net)
	if err := c.Store(id, net, Info{}); err != nil {
		t.Fatal(err)
	}
	first, _, err := c.Load(id, gemm.FP32)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	loaded := make([]*model.Network, len(errs))
	for i := range errs {
		wg.Go(func() {
			if i%2 == 0 {
				errs[i] = c.Store(id, net, Info{})
				return
			}
			loaded[i], _, errs[i] = c.Load(id, gemm.FP32)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		if loaded[i] != nil {
			sameBits(t, logits(t, loaded[i]), want)
		}
	}
	sameBits(t, logits(t, first), want)
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("cache holds %d files, want 1 (no temporary files left)", len(entries))
	}
}

// TestLayout: the layout names the precision the CPU runs and is stable.
func TestLayout(t *testing.T) {
	fp32, err := Layout(gemm.FP32)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := probeLayout(gemm.FP32); again != fp32 {
		t.Error("layout differs between two computations")
	}
	bf16, err := Layout(gemm.BF16)
	if err != nil {
		t.Fatal(err)
	}
	if gemm.HasBF16() == (bf16 == fp32) {
		t.Errorf("bf16 layout %q, fp32 %q: want them different exactly when the CPU has BF16", bf16, fp32)
	}
}

// TestStoreUnwritable: a cache directory that cannot be made is an error
// from Store, for the caller to ignore.
func TestStoreUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	c := &Cache{Dir: filepath.Join(file, "packed")}
	_, id := checkpointFile(t, t.TempDir(), "weights")
	if err := c.Store(id, newNet(t, probeConfig(), 3), Info{}); err == nil {
		t.Fatal("stored under a file")
	}
}
