package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/res2net/res2net/pkg/ops"
)

// expectedTensor is one entry of testdata/expected.json, written by
// scripts/make_weights_fixtures.py from PyTorch's view of the fixture.
type expectedTensor struct {
	Key   string    `json:"key"`
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

func loadExpected(t *testing.T) map[string][]expectedTensor {
	t.Helper()
	var exp map[string][]expectedTensor
	if err := json.Unmarshal(fixture(t, "expected.json"), &exp); err != nil {
		t.Fatal(err)
	}
	return exp
}

func TestLoadMatchesPyTorch(t *testing.T) {
	for name, want := range loadExpected(t) {
		t.Run(name, func(t *testing.T) {
			ck, err := Load(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			wantFormat := "zip"
			switch {
			case strings.Contains(name, "legacy"):
				wantFormat = "legacy"
			case strings.HasSuffix(name, ".safetensors"):
				wantFormat = "safetensors"
			}
			if ck.Format != wantFormat {
				t.Errorf("Format = %q, want %q", ck.Format, wantFormat)
			}
			var wantKeys []string
			for _, w := range want {
				wantKeys = append(wantKeys, w.Key)
			}
			if !slices.Equal(ck.Keys, wantKeys) {
				t.Fatalf("Keys = %q, want %q", ck.Keys, wantKeys)
			}
			if len(ck.Tensors) != len(wantKeys) {
				t.Errorf("%d tensors, want %d", len(ck.Tensors), len(wantKeys))
			}
			if len(ck.Warnings) != 0 {
				t.Errorf("Warnings = %q", ck.Warnings)
			}
			for _, w := range want {
				got := ck.Tensors[w.Key]
				if !ops.SameShape(got.Shape, w.Shape) {
					t.Errorf("%s: shape %v, want %v", w.Key, got.Shape, w.Shape)
					continue
				}
				if len(got.Data) != len(w.Data) {
					t.Errorf("%s: %d values, want %d", w.Key, len(got.Data), len(w.Data))
					continue
				}
				for i, v := range w.Data {
					// Conversions to float32 are exact or round the same way as PyTorch.
					if got.Data[i] != float32(v) {
						t.Errorf("%s[%d] = %v, want %v", w.Key, i, got.Data[i], float32(v))
						break
					}
				}
			}
		})
	}
}

// TestLoadOwnMemory checks that tensors sharing a storage do not share
// memory, since the model folds BatchNorm into weights in place.
func TestLoadOwnMemory(t *testing.T) {
	for _, name := range []string{"views_legacy.pth", "views_zip.pth"} {
		ck, err := Load(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		a, b := ck.Tensors["shared_a"].Data, ck.Tensors["shared_b"].Data
		before := b[0]
		a[0] += 1
		if b[0] != before {
			t.Errorf("%s: shared_a and shared_b share memory", name)
		}
	}
}

// TestLoadTinyFixtures loads the committed fixtures the python helper wrote.
func TestLoadTinyFixtures(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "tiny")
	load := func(name string) *Checkpoint {
		ck, err := Load(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return ck
	}
	legacy := load("tiny_legacy.pth")
	if legacy.Format != "legacy" {
		t.Errorf("tiny_legacy.pth: Format %q", legacy.Format)
	}
	for _, tc := range []struct {
		name   string
		format string
		tol    float64
	}{
		{"tiny_zip.pth", "zip", 0},
		{"tiny_f16.pth", "zip", 1e-3}, // relative float16 rounding
		{"tiny_bf16.pth", "", 8e-3},   // relative bfloat16 rounding
		{"tiny_wrapped.pth", "", 0},
	} {
		ck := load(tc.name)
		if tc.format != "" && ck.Format != tc.format {
			t.Errorf("%s: Format %q, want %q", tc.name, ck.Format, tc.format)
		}
		if !slices.Equal(ck.Keys, legacy.Keys) {
			t.Errorf("%s: keys differ from tiny_legacy.pth", tc.name)
			continue
		}
		for _, k := range ck.Keys {
			a, b := ck.Tensors[k], legacy.Tensors[k]
			if !ops.SameShape(a.Shape, b.Shape) {
				t.Errorf("%s: %s has shape %v, want %v", tc.name, k, a.Shape, b.Shape)
				continue
			}
			for i := range a.Data {
				// 6e-8 is the spacing of float16 subnormals.
				if d := math.Abs(float64(a.Data[i] - b.Data[i])); d > tc.tol*math.Abs(float64(b.Data[i]))+6e-8 {
					t.Errorf("%s: %s[%d] = %v, want %v", tc.name, k, i, a.Data[i], b.Data[i])
					break
				}
			}
		}
	}
}

func TestLoadNonFiniteWarns(t *testing.T) {
	ck, err := Load(filepath.Join("testdata", "nonfinite_legacy.pth"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ck.Warnings) != 1 || !strings.Contains(ck.Warnings[0], `1 of 1 tensors`) ||
		!strings.Contains(ck.Warnings[0], `"w" has 1 NaN and 2 infinite values among 4`) {
		t.Errorf("Warnings = %q", ck.Warnings)
	}
	if !slices.Equal(ck.NonFinite, []string{"w"}) {
		t.Errorf("NonFinite = %q", ck.NonFinite)
	}
	d := ck.Tensors["w"].Data
	if d[0] != 1 || !math.IsNaN(float64(d[1])) || !math.IsInf(float64(d[2]), 1) || !math.IsInf(float64(d[3]), -1) {
		t.Errorf("values %v, want [1 NaN +Inf -Inf]", d)
	}
}

// TestLoadNonFiniteOneWarning checks that many non-finite tensors make
// one warning, naming the first, not one warning per tensor.
func TestLoadNonFiniteOneWarning(t *testing.T) {
	const n = 50
	var specs []tensorSpec
	var keys []string
	var storages [][]byte
	for i := range n {
		key := fmt.Sprintf("t%02d", i)
		specs = append(specs, tensorSpec{key, "FloatStorage", key, 2, 0, []int64{2}, []int64{1}})
		keys = append(keys, key)
		v := float32(i)
		if i%2 == 1 {
			v = float32(math.Inf(1))
		}
		storages = append(storages, storageBytes(2, 1, v))
	}
	data := legacyFile(stateDictPickle(true, specs...), keys, storages...)
	ck, err := Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ck.Warnings) != 1 || !strings.Contains(ck.Warnings[0], `25 of 50 tensors`) || !strings.Contains(ck.Warnings[0], `"t01" has 0 NaN and 1 infinite`) {
		t.Errorf("Warnings = %q, want one naming 25 of 50 tensors and t01", ck.Warnings)
	}
	if len(ck.NonFinite) != n/2 || ck.NonFinite[0] != "t01" || ck.NonFinite[n/2-1] != "t49" {
		t.Errorf("NonFinite = %q", ck.NonFinite)
	}
}

func TestLoadErrors(t *testing.T) {
	netZip := fixture(t, "net_zip.pth")
	entries := zipEntries(t, netZip)
	without := func(name string) []byte {
		var kept []zipEntry
		for _, e := range entries {
			if e.name != name {
				kept = append(kept, e)
			}
		}
		return zipFile(t, kept...)
	}
	// Flip a byte inside the first storage: the CRC-32 check must catch it.
	crcBad := append([]byte(nil), netZip...)
	for _, e := range entries {
		if e.name == "net_zip/data/0" {
			crcBad[bytes.Index(crcBad, e.data)+1] ^= 1
		}
	}
	legacy := fixture(t, "net_legacy.pth")
	sd := stateDictPickle(true, tensorSpec{"w", "FloatStorage", "0", 2, 0, []int64{2}, []int64{1}})
	mismatched := legacyFile(sd, []string{"0"}, storageBytes(3, 1, 2, 3))
	noData := legacyFile(sd, nil)
	unusedKey := legacyFile(sd, []string{"0", "9"}, storageBytes(2, 1, 2))

	random := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}

	tests := []struct {
		name string
		data []byte // written to a file; nil with path set
		path string
		want error
		msg  string
	}{
		{name: "empty", data: []byte{}, want: ErrNotCheckpoint, msg: "empty"},
		{name: "directory", path: t.TempDir(), want: ErrNotCheckpoint, msg: "directory"},
		{name: "missing", path: filepath.Join(t.TempDir(), "nope.pth"), want: fs.ErrNotExist},
		{name: "random bytes", data: random, want: ErrNotCheckpoint},
		{name: "text", data: []byte("hello, world\n"), want: ErrNotCheckpoint},
		{name: "plain pickle", data: []byte("\x80\x02}q\x00."), want: ErrNotCheckpoint, msg: "magic"},
		{name: "torchscript", path: "testdata/torchscript.pt", want: ErrTorchScript},
		{name: "tar format", path: "testdata/old_tar.pth", want: ErrTarFormat},
		{name: "missing storage entry", data: without("net_zip/data/1"), want: ErrCorrupt, msg: "net_zip/data/1 is missing"},
		{name: "missing data.pkl", data: without("net_zip/data.pkl"), want: ErrNotCheckpoint, msg: "data.pkl"},
		{name: "crc mismatch", data: crcBad, want: ErrCorrupt, msg: "CRC"},
		{name: "zip truncated", data: netZip[:len(netZip)-30], want: ErrTruncated},
		{name: "int tensor", path: "testdata/int_tensor_zip.pth", want: ErrUnsupported, msg: `"index" has dtype int32`},
		{name: "pickled module", path: "testdata/module_legacy.pth", want: ErrNotStateDict, msg: "torch.nn.modules.linear.Linear"},
		{name: "list", path: "testdata/not_a_dict_zip.pth", want: ErrNotStateDict, msg: "a list"},
		{name: "storage count mismatch", data: mismatched, want: ErrCorrupt, msg: "holds 3 elements, the state dict says 2"},
		{name: "storage without data", data: noData, want: ErrCorrupt, msg: "storage 0 has no data"},
		{name: "unused storage key", data: unusedKey, want: ErrCorrupt, msg: `"9"`},
		{name: "legacy truncated", data: legacy[:len(legacy)-1], want: ErrTruncated},
		{
			name: "negative stride",
			data: legacyFile(stateDictPickle(true, tensorSpec{"w", "FloatStorage", "0", 2, 1, []int64{2}, []int64{-1}}),
				[]string{"0"}, storageBytes(2, 1, 2)),
			want: ErrCorrupt, msg: "negative",
		},
		{
			name: "view past storage",
			data: legacyFile(stateDictPickle(true, tensorSpec{"w", "FloatStorage", "0", 2, 1, []int64{2}, []int64{1}}),
				[]string{"0"}, storageBytes(2, 1, 2)),
			want: ErrCorrupt, msg: "reaches element 2 of a storage of 2",
		},
		{
			name: "overflowing size",
			data: legacyFile(stateDictPickle(true, tensorSpec{"w", "FloatStorage", "0", 2, 0, []int64{1 << 32, 1 << 32}, []int64{0, 0}}),
				[]string{"0"}, storageBytes(2, 1, 2)),
			want: ErrCorrupt, msg: "overflows",
		},
		{
			name: "unknown storage type",
			data: legacyFile(stateDictPickle(true, tensorSpec{"w", "FancyStorage", "0", 2, 0, []int64{2}, []int64{1}}),
				[]string{"0"}, storageBytes(2, 1, 2)),
			want: ErrUnsupported, msg: "torch.FancyStorage",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if tc.data != nil {
				path = writeTemp(t, "ck.pth", tc.data)
			}
			ck, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded with %d tensors", len(ck.Tensors))
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %q is not %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not mention %q and the path", err, tc.msg)
			}
		})
	}
}

// TestLoadTruncatedEverywhere cuts fixtures at every byte: each prefix must
// be rejected as truncated, without a panic.
func TestLoadTruncatedEverywhere(t *testing.T) {
	for _, name := range []string{"net_legacy.pth", "views_legacy.pth", "net_zip.pth", "net_f16_legacy.pth"} {
		data := fixture(t, name)
		for n := 1; n < len(data); n++ {
			_, err := Read(bytes.NewReader(data[:n]), int64(n))
			if !errors.Is(err, ErrTruncated) {
				t.Errorf("%s cut at %d: error %v, want ErrTruncated", name, n, err)
				break
			}
		}
	}
}

// TestLoadHugeClaimsDoNotAllocate checks that small files announcing huge
// storages or views fail before allocating for them.
func TestLoadHugeClaimsDoNotAllocate(t *testing.T) {
	const huge = int64(1) << 40
	zipped := func(numel int64, size, stride []int64) []byte {
		return zipFile(t,
			zipEntry{"archive/data.pkl", stateDictPickle(false, tensorSpec{"w", "FloatStorage", "0", numel, 0, size, stride})},
			zipEntry{"archive/data/0", make([]byte, 16)},
		)
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{
			"legacy storage",
			legacyFile(stateDictPickle(true, tensorSpec{"w", "FloatStorage", "0", huge, 0, []int64{huge}, []int64{1}}),
				[]string{"0"}, storageBytes(uint64(huge), 1, 2, 3, 4)),
			ErrTruncated,
		},
		{"zip storage", zipped(huge, []int64{huge}, []int64{1}), ErrCorrupt},
		{"stride-0 view", zipped(4, []int64{huge}, []int64{0}), ErrCorrupt},
		{"pickle string", append(append([]byte(nil), legacyMagicPickle...), "\x80\x02\x8d\xff\xff\xff\xff\xff\xff\x00\x00."...), ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.data) > 2048 {
				t.Fatalf("test file of %d bytes is not small", len(tc.data))
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Read(bytes.NewReader(tc.data), int64(len(tc.data)))
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if d := after.TotalAlloc - before.TotalAlloc; d > 64<<20 {
				t.Errorf("allocated %d MB", d>>20)
			}
		})
	}
}
