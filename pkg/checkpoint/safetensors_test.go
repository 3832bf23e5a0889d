package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/res2net/res2net/pkg/ops"
)

// stFile assembles a safetensors file from a header and data.
func stFile(header string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(out, header...), data...)
}

// TestSafetensorsFromPython checks what the files the fixture script wrote
// carry besides the tensors (compared with PyTorch in TestLoadMatchesPyTorch).
func TestSafetensorsFromPython(t *testing.T) {
	ck, err := Load(filepath.Join("testdata", "net.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"format": "pt", "source": "make_weights_fixtures.py"}
	if !maps.Equal(ck.Metadata, want) {
		t.Errorf("Metadata = %v, want %v", ck.Metadata, want)
	}
	for _, k := range ck.Keys {
		if strings.HasSuffix(k, "num_batches_tracked") {
			t.Errorf("%s kept", k)
		}
	}
	mixed, err := Load(filepath.Join("testdata", "module_mixed.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if mixed.Metadata != nil {
		t.Errorf("Metadata = %v, want nil", mixed.Metadata)
	}
	if !slices.Equal(mixed.Keys, ck.Keys) {
		t.Errorf("module. prefix: keys %q, want %q", mixed.Keys, ck.Keys)
	}
}

// TestSafetensorsRoundTrip writes the tiny model and odd tensors and reads
// them back bit for bit; the bytes do not depend on the map's order.
func TestSafetensorsRoundTrip(t *testing.T) {
	src, err := Load(filepath.Join("..", "..", "testdata", "tiny", "tiny_legacy.pth"))
	if err != nil {
		t.Fatal(err)
	}
	tensors := maps.Clone(src.Tensors)
	tensors["odd/scalar"] = &ops.Tensor{Data: []float32{-2.5}}
	tensors["odd/empty"] = &ops.Tensor{Shape: []int{0, 3}}
	tensors["odd/specials"] = &ops.Tensor{Shape: []int{5}, Data: []float32{
		float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.Float32frombits(0x80000000), math.SmallestNonzeroFloat32}}
	meta := map[string]string{"format": "pt", "note": `quotes " and <html> & ünïcode`}
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, tensors, meta); err != nil {
		t.Fatal(err)
	}
	if hdrLen := binary.LittleEndian.Uint64(buf.Bytes()); (8+hdrLen)%8 != 0 {
		t.Errorf("data starts at byte %d, not 8-byte aligned", 8+hdrLen)
	}
	ck, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if ck.Format != "safetensors" || !maps.Equal(ck.Metadata, meta) {
		t.Errorf("Format %q, Metadata %v", ck.Format, ck.Metadata)
	}
	if want := slices.Sorted(maps.Keys(tensors)); !slices.Equal(ck.Keys, want) {
		t.Errorf("Keys = %q, want sorted %q", ck.Keys, want)
	}
	for k, want := range tensors {
		got := ck.Tensors[k]
		if !ops.SameShape(got.Shape, want.Shape) || len(got.Data) != len(want.Data) {
			t.Fatalf("%s: shape %v, want %v", k, got.Shape, want.Shape)
		}
		for i := range want.Data {
			if math.Float32bits(got.Data[i]) != math.Float32bits(want.Data[i]) {
				t.Fatalf("%s[%d] = %v, want %v", k, i, got.Data[i], want.Data[i])
			}
		}
	}
	if !slices.Equal(ck.NonFinite, []string{"odd/specials"}) || len(ck.Warnings) != 1 {
		t.Errorf("NonFinite %q, Warnings %q", ck.NonFinite, ck.Warnings)
	}
	// Deterministic: the same bytes from a map built in another order.
	again := map[string]*ops.Tensor{}
	for _, k := range slices.Backward(slices.Sorted(maps.Keys(tensors))) {
		again[k] = tensors[k]
	}
	var buf2 bytes.Buffer
	if err := WriteSafetensors(&buf2, again, meta); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
		t.Error("two writes of the same tensors differ")
	}
	// The module. prefix of a DataParallel model is removed, as for .pth.
	prefixed := map[string]*ops.Tensor{}
	for k, v := range src.Tensors {
		prefixed["module."+k] = v
	}
	buf.Reset()
	if err := WriteSafetensors(&buf, prefixed, nil); err != nil {
		t.Fatal(err)
	}
	if ck, err = Read(bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil || !slices.Equal(ck.Keys, slices.Sorted(maps.Keys(src.Tensors))) {
		t.Errorf("module. prefix: %v, keys %q", err, ck.Keys)
	}
}

func TestWriteSafetensorsErrors(t *testing.T) {
	tests := []struct {
		name    string
		tensors map[string]*ops.Tensor
		msg     string
	}{
		{"none", nil, "no tensors"},
		{"nil tensor", map[string]*ops.Tensor{"a": nil}, `"a" is nil`},
		{"short data", map[string]*ops.Tensor{"a": {Shape: []int{2, 2}, Data: make([]float32, 3)}}, `"a" has 3 values for shape [2 2]`},
		{"negative shape", map[string]*ops.Tensor{"a": {Shape: []int{-1}}}, "shape [-1]"},
		{"metadata name", map[string]*ops.Tensor{"__metadata__": {Data: []float32{1}}}, "cannot be named"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteSafetensors(&buf, tc.tensors, nil)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %v, want %q", err, tc.msg)
			}
		})
	}
	t.Run("failing writer", func(t *testing.T) {
		err := WriteSafetensors(failWriter{}, map[string]*ops.Tensor{"a": {Data: []float32{1}}}, nil)
		if !errors.Is(err, errDiskFull) {
			t.Errorf("error %v, want the writer's", err)
		}
	})
}

var errDiskFull = errors.New("disk full")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestSafetensorsErrors(t *testing.T) {
	f4 := make([]byte, 4)
	entry := func(name, dtype, shape, offsets string) string {
		return `"` + name + `":{"dtype":"` + dtype + `","shape":` + shape + `,"data_offsets":` + offsets + `}`
	}
	a := entry("a", "F32", "[1]", "[0,4]")
	huge := binary.LittleEndian.AppendUint64(nil, maxSafetensorsHeader+1)
	tests := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"header too long", append(huge, "{}"...), ErrUnsupported, "header of 4194305 bytes"},
		{"header past the end", append(binary.LittleEndian.AppendUint64(nil, 100), `{"a":`...), ErrTruncated, "header of 100 bytes, the file holds 5"},
		{"invalid JSON", stFile(`{"a":}`, nil), ErrCorrupt, "safetensors header: invalid character"},
		{"not UTF-8", stFile("{\"\xff\":{}}", nil), ErrCorrupt, "UTF-8"},
		{"data after the object", stFile(`{`+a+`}{}`, f4), ErrCorrupt, "data after the JSON object"},
		{"duplicate name", stFile(`{`+a+`,`+a+`}`, f4), ErrCorrupt, `the header has the key "a" twice`},
		{"duplicate field", stFile(`{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f4), ErrCorrupt, `tensor "a" has the key "dtype" twice`},
		{"unknown field", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, f4), ErrCorrupt, `unknown field "x"`},
		{"missing field", stFile(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, f4), ErrCorrupt, "required"},
		{"null shape", stFile(`{"a":{"dtype":"F32","shape":null,"data_offsets":[0,4]}}`, f4), ErrCorrupt, "required"},
		{"entry not an object", stFile(`{"a":[1]}`, nil), ErrCorrupt, `tensor "a" is not a JSON object`},
		{"unknown dtype", stFile(`{`+entry("a", "F128", "[1]", "[0,16]")+`}`, make([]byte, 16)), ErrCorrupt, `unknown dtype "F128"`},
		{"float shape", stFile(`{`+entry("a", "F32", "[1.5]", "[0,4]")+`}`, f4), ErrCorrupt, "shape"},
		{"three offsets", stFile(`{`+entry("a", "F32", "[1]", "[0,4,8]")+`}`, f4), ErrCorrupt, "data_offsets has 3 values"},
		{"negative offset", stFile(`{`+entry("a", "F32", "[1]", "[-4,0]")+`}`, f4), ErrCorrupt, "data_offsets"},
		{"negative dim", stFile(`{`+entry("a", "F32", "[-1]", "[0,4]")+`}`, f4), ErrCorrupt, "shape [-1]"},
		{"overflowing shape", stFile(`{`+entry("a", "F32", "[4294967296,4294967296]", "[0,4]")+`}`, f4), ErrCorrupt, "overflows"},
		{"size mismatch", stFile(`{`+entry("a", "F32", "[2]", "[0,4]")+`}`, f4), ErrCorrupt, `"a": offsets [0, 4] for 2 F32 elements`},
		{"reversed offsets", stFile(`{`+entry("a", "F32", "[0]", "[4,0]")+`}`, f4), ErrCorrupt, "offsets [4, 0]"},
		{"overlap", stFile(`{`+a+`,`+entry("b", "F32", "[1]", "[0,4]")+`}`, f4), ErrCorrupt, `tensors "a" and "b" overlap`},
		{"gap", stFile(`{`+entry("a", "F32", "[1]", "[4,8]")+`}`, make([]byte, 8)), ErrCorrupt, "bytes 0 to 4 belong to no tensor"},
		{"trailing bytes", stFile(`{`+a+`}`, make([]byte, 6)), ErrCorrupt, "2 bytes after the last"},
		{"data short", stFile(`{`+entry("a", "F32", "[2]", "[0,8]")+`}`, f4), ErrTruncated, "need 8 bytes of data, the file holds 4"},
		{"huge claim", stFile(`{`+entry("a", "F32", "[1073741824]", "[0,4294967296]")+`}`, f4), ErrTruncated, "need 4294967296 bytes"},
		{"int tensor", stFile(`{`+entry("index", "I64", "[1]", "[0,8]")+`}`, make([]byte, 8)), ErrUnsupported, `"index" has dtype I64`},
		{"metadata not strings", stFile(`{"__metadata__":{"epoch":3},`+a+`}`, f4), ErrCorrupt, `__metadata__["epoch"]`},
		{"metadata not an object", stFile(`{"__metadata__":"x",`+a+`}`, f4), ErrCorrupt, "__metadata__ is not a JSON object"},
		{"only metadata", stFile(`{"__metadata__":{}}`, nil), ErrNotStateDict, "no tensors"},
		{"only counters", stFile(`{`+entry("bn.num_batches_tracked", "I64", "[]", "[0,8]")+`}`, make([]byte, 8)), ErrNotStateDict, "no tensors"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTemp(t, "w.safetensors", tc.data)
			var ck *Checkpoint
			var err error
			alloc := allocated(func() { ck, err = Load(path) })
			if err == nil {
				t.Fatalf("Load succeeded with %d tensors", len(ck.Tensors))
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q, want %v mentioning %q and the path", err, tc.want, tc.msg)
			}
			if alloc > 1<<20 {
				t.Errorf("allocated %d KB", alloc>>10)
			}
		})
	}
}

// TestSafetensorsTruncatedEverywhere cuts the Python-written files at
// every byte from the header's first '{' on.
func TestSafetensorsTruncatedEverywhere(t *testing.T) {
	for _, name := range []string{"net.safetensors", "module_mixed.safetensors"} {
		data := fixture(t, name)
		for n := safetensorsLenSize + 1; n < len(data); n++ {
			_, err := Read(bytes.NewReader(data[:n]), int64(n))
			if !errors.Is(err, ErrTruncated) {
				t.Errorf("%s cut at %d: error %v, want ErrTruncated", name, n, err)
				break
			}
		}
	}
}

// TestSafetensorsOneCopy checks that the data is read straight into the
// tensors: loading allocates about the tensors' size, not twice it.
func TestSafetensorsOneCopy(t *testing.T) {
	const n = 2 << 20 // values per tensor
	var buf bytes.Buffer
	err := WriteSafetensors(&buf, map[string]*ops.Tensor{
		"a": {Shape: []int{n}, Data: make([]float32, n)},
		"b": {Shape: []int{n / 2, 2}, Data: make([]float32, n)},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	half := stFile(`{"h":{"dtype":"F16","shape":[`+strconv.Itoa(n)+`],"data_offsets":[0,`+strconv.Itoa(2*n)+`]}}`, make([]byte, 2*n))
	for _, tc := range []struct {
		name   string
		data   []byte
		values int
	}{{"F32", buf.Bytes(), 2 * n}, {"F16", half, n}} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTemp(t, "big.safetensors", tc.data)
			var err error
			alloc := allocated(func() { _, err = Load(path) })
			if err != nil {
				t.Fatal(err)
			}
			if want := uint64(4 * tc.values); alloc > want+want/8 {
				t.Errorf("allocated %d KB for %d KB of tensors", alloc>>10, want>>10)
			}
		})
	}
}
