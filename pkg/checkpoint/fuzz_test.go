package checkpoint

import (
	"bytes"
	"errors"
	"maps"
	"math"
	"testing"

	"github.com/res2net/res2net/pkg/ops"
)

// The fuzz targets run their seeds (the fixtures below and
// testdata/fuzz/<Name>/) as plain tests; run one with, for example,
// go test -run=^$ -fuzz=FuzzReadLegacy -fuzztime=2m -fuzzminimizetime=5s ./pkg/checkpoint/
// (the default minimisation budget, a minute per new input, stalls on the
// kilobyte-sized zip inputs).

var loadErrors = []error{ErrNotCheckpoint, ErrTruncated, ErrCorrupt, ErrTorchScript, ErrTarFormat, ErrNotStateDict, ErrUnsupported}

// checkLoaded asserts what any input must give: an error of a known
// class, or a consistent checkpoint of at most maxElems values.
func checkLoaded(t *testing.T, ck *Checkpoint, err error, maxElems int64) {
	t.Helper()
	if err != nil {
		for _, e := range loadErrors {
			if errors.Is(err, e) {
				return
			}
		}
		t.Fatalf("unclassified error: %v", err)
	}
	if len(ck.Keys) != len(ck.Tensors) || len(ck.Keys) == 0 {
		t.Fatalf("%d keys, %d tensors", len(ck.Keys), len(ck.Tensors))
	}
	total := int64(0)
	for _, k := range ck.Keys {
		tn := ck.Tensors[k]
		if tn == nil || len(tn.Data) != ops.NumElements(tn.Shape) {
			t.Fatalf("tensor %q inconsistent", k)
		}
		total += int64(len(tn.Data))
	}
	if total > maxElems {
		t.Fatalf("%d elements, at most %d expected", total, maxElems)
	}
}

func FuzzReadLegacy(f *testing.F) {
	for _, name := range []string{"net_legacy.pth", "views_legacy.pth", "net_bf16_legacy.pth", "module_legacy.pth"} {
		f.Add(fixture(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		size := int64(len(data))
		ck, err := readLegacy(bytes.NewReader(data), size)
		// Storages hold at most size/2 values (float16), view copies at most size.
		checkLoaded(t, ck, err, 2*size)
	})
}

func FuzzReadZip(f *testing.F) {
	for _, name := range []string{"net_zip.pth", "views_zip.pth", "net_bigendian_zip.pth", "torchscript.pt"} {
		f.Add(fixture(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		size := int64(len(data))
		ck, err := readZip(bytes.NewReader(data), size)
		// Deflated storages expand at most to the archive's budget (float16:
		// a value per 2 bytes), view copies hold at most size values.
		checkLoaded(t, ck, err, max(maxZipExpansion*size, minZipBudget)/2+size)
	})
}

// FuzzStateDict fuzzes the pickle and the mapping from it to tensors,
// with synthetic storages, and checks each tensor against a naive
// computation of its view.
func FuzzStateDict(f *testing.F) {
	for _, name := range []string{"views_zip.pth", "wrapped_model_zip.pth", "int_tensor_zip.pth"} {
		for _, e := range zipEntries(f, fixture(f, name)) {
			if bytes.HasSuffix([]byte(e.name), []byte("/data.pkl")) {
				f.Add(e.data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, pkl []byte) {
		const budget = 1 << 16
		st := newStorages(false)
		entries, err := parseStateDict(pkl, st)
		if err != nil {
			checkLoaded(t, nil, err, 0)
			return
		}
		for _, s := range st.order {
			if s.numel > budget {
				return
			}
			s.data = make([]float32, s.numel)
			for i := range s.data {
				s.data[i] = float32(i)
			}
		}
		ck, err := build("zip", entries, budget)
		if err != nil {
			checkLoaded(t, nil, err, 0)
			return
		}
		for _, e := range entries {
			want := naiveView(e.t.storage.data, e.t.offset, e.t.size, e.t.stride)
			got := ck.Tensors[e.key].Data
			if len(got) != len(want) {
				t.Fatalf("%q: %d values, want %d", e.key, len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%q[%d] = %v, want %v", e.key, i, got[i], want[i])
				}
			}
		}
	})
}

// FuzzReadSafetensors checks that any input gives a classified error or
// tensors of at most a value per 2 bytes, and that what loads survives
// WriteSafetensors and a second read bit for bit.
func FuzzReadSafetensors(f *testing.F) {
	for _, name := range []string{"net.safetensors", "module_mixed.safetensors"} {
		f.Add(fixture(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		size := int64(len(data))
		ck, err := readSafetensors(bytes.NewReader(data), size)
		checkLoaded(t, ck, err, size/2)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteSafetensors(&buf, ck.Tensors, ck.Metadata); err != nil {
			t.Fatalf("write what was read: %v", err)
		}
		again, err := readSafetensors(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("read what was written: %v", err)
		}
		if !maps.Equal(again.Metadata, ck.Metadata) || len(again.Keys) != len(ck.Keys) {
			t.Fatalf("metadata %v, %d keys; want %v, %d", again.Metadata, len(again.Keys), ck.Metadata, len(ck.Keys))
		}
		for _, k := range ck.Keys {
			a, b := ck.Tensors[k], again.Tensors[k]
			if b == nil || !ops.SameShape(a.Shape, b.Shape) {
				t.Fatalf("%q lost or reshaped", k)
			}
			for i := range a.Data {
				if math.Float32bits(a.Data[i]) != math.Float32bits(b.Data[i]) {
					t.Fatalf("%q[%d] = %v after the round trip, want %v", k, i, b.Data[i], a.Data[i])
				}
			}
		}
	})
}
