package checkpoint

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/res2net/res2net/pkg/ops"
)

// The safetensors format (Hugging Face): an 8-byte little-endian header
// length n, n bytes of JSON, then the tensors' bytes. The JSON object maps
// each tensor name to {"dtype", "shape", "data_offsets": [begin, end]},
// offsets relative to the end of the header, plus an optional
// "__metadata__" object of strings. The tensors must cover the data
// exactly, without gaps or overlaps.
const (
	// maxSafetensorsHeader bounds the JSON header. The Rust library allows
	// 100 MB; 4 MiB holds some 40,000 tensor entries (Res2Net-101's 852
	// take 89 KB) and costs at most about 120 MB and half a second to parse.
	maxSafetensorsHeader = 4 << 20
	// safetensorsLenSize is the size of the header length field.
	safetensorsLenSize = 8
	metadataKey        = "__metadata__"
)

// safetensorsDTypes maps the format's dtype names to element types; the
// ones without a decoder are validated but cannot be loaded.
var safetensorsDTypes = map[string]*dtype{
	"F32":     float32Type,
	"F16":     storageDTypes["HalfStorage"],
	"BF16":    storageDTypes["BFloat16Storage"],
	"F64":     storageDTypes["DoubleStorage"],
	"I64":     storageDTypes["LongStorage"],
	"I32":     storageDTypes["IntStorage"],
	"I16":     storageDTypes["ShortStorage"],
	"I8":      storageDTypes["CharStorage"],
	"U8":      storageDTypes["ByteStorage"],
	"BOOL":    storageDTypes["BoolStorage"],
	"U16":     {name: "uint16", size: 2},
	"U32":     {name: "uint32", size: 4},
	"U64":     {name: "uint64", size: 8},
	"F8_E4M3": {name: "float8_e4m3fn", size: 1},
	"F8_E5M2": {name: "float8_e5m2", size: 1},
}

// isSafetensors reports whether a file starts like safetensors: a header
// length below 4 GiB followed by '{'. No pickle or zip starts so.
func isSafetensors(head []byte) bool {
	return len(head) > safetensorsLenSize && head[safetensorsLenSize] == '{' &&
		binary.LittleEndian.Uint64(head) < 1<<32
}

// stTensor is one tensor entry of a safetensors header.
type stTensor struct {
	name       string
	dtype      string
	dt         *dtype
	shape      []int64
	begin, end uint64
}

// readSafetensors reads a safetensors file of the given size. Each tensor
// is read straight into its float32 slice (float32) or converted through a
// small buffer (other types): the file's data is never held twice.
func readSafetensors(r io.ReaderAt, size int64) (*Checkpoint, error) {
	var lenBuf [safetensorsLenSize]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, truncated(err, "inside the safetensors header length")
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	switch {
	case n > maxSafetensorsHeader:
		return nil, fmt.Errorf("%w: safetensors header of %d bytes (at most %d are read)", ErrUnsupported, n, maxSafetensorsHeader)
	case n > uint64(size-safetensorsLenSize):
		return nil, fmt.Errorf("%w: safetensors header of %d bytes, the file holds %d after the length", ErrTruncated, n, size-safetensorsLenSize)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, safetensorsLenSize); err != nil {
		return nil, truncated(err, "inside the safetensors header")
	}
	tensors, meta, err := parseSafetensorsHeader(hdr)
	if err != nil {
		return nil, fmt.Errorf("%w: safetensors header: %v", ErrCorrupt, err)
	}
	dataStart := safetensorsLenSize + int64(n)
	if err := checkSafetensorsLayout(tensors, uint64(size-dataStart)); err != nil {
		return nil, err
	}

	prefix := sharedPrefix(len(tensors), func(i int) string { return tensors[i].name })
	ck := &Checkpoint{Format: "safetensors", Tensors: make(map[string]*ops.Tensor, len(tensors)), Metadata: meta}
	for _, t := range tensors {
		key := t.name[len(prefix):]
		switch {
		case isBatchCounter(key):
			continue
		case t.dt.decode == nil:
			return nil, fmt.Errorf("%w: tensor %q has dtype %s; only F32, F16, BF16 and F64 can be loaded", ErrUnsupported, key, t.dtype)
		case ck.Tensors[key] != nil:
			// Only possible when stripping "module." made two names equal.
			return nil, fmt.Errorf("%w: key %q appears twice", ErrCorrupt, key)
		}
		numel := int64(t.end-t.begin) / t.dt.size
		sr := io.NewSectionReader(r, dataStart+int64(t.begin), int64(t.end-t.begin))
		data, err := readStorage(sr, t.dt, numel, binary.LittleEndian)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", key, truncated(err, "inside the tensor"))
		}
		shape := make([]int, len(t.shape))
		for i, d := range t.shape {
			shape[i] = int(d)
		}
		ck.Tensors[key] = &ops.Tensor{Shape: shape, Data: data}
		ck.Keys = append(ck.Keys, key)
	}
	if len(ck.Keys) == 0 {
		return nil, fmt.Errorf("%w: the safetensors file holds no tensors", ErrNotStateDict)
	}
	ck.checkFinite()
	return ck, nil
}

// checkSafetensorsLayout checks that each tensor's bytes match its dtype
// and shape, and that together the tensors cover the dataLen bytes of
// data exactly, in some order, without gaps or overlaps.
func checkSafetensorsLayout(tensors []stTensor, dataLen uint64) error {
	for _, t := range tensors {
		numel := int64(1)
		for _, d := range t.shape {
			if d < 0 {
				return fmt.Errorf("%w: safetensors tensor %q has shape %v", ErrCorrupt, t.name, t.shape)
			}
			if d != 0 && numel > math.MaxInt64/t.dt.size/d {
				return fmt.Errorf("%w: safetensors tensor %q: shape %v overflows", ErrCorrupt, t.name, t.shape)
			}
			numel *= d
		}
		if t.end < t.begin || t.end-t.begin != uint64(numel*t.dt.size) {
			return fmt.Errorf("%w: safetensors tensor %q: offsets [%d, %d] for %d %s elements of %d bytes",
				ErrCorrupt, t.name, t.begin, t.end, numel, t.dtype, t.dt.size)
		}
	}
	byOffset := slices.Clone(tensors)
	slices.SortStableFunc(byOffset, func(a, b stTensor) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end))
	})
	var pos uint64
	for i, t := range byOffset {
		switch {
		case t.begin > pos:
			return fmt.Errorf("%w: safetensors data bytes %d to %d belong to no tensor", ErrCorrupt, pos, t.begin)
		case t.begin < pos:
			return fmt.Errorf("%w: safetensors tensors %q and %q overlap", ErrCorrupt, byOffset[i-1].name, t.name)
		}
		pos = t.end
	}
	switch {
	case pos > dataLen:
		return fmt.Errorf("%w: the safetensors tensors need %d bytes of data, the file holds %d", ErrTruncated, pos, dataLen)
	case pos < dataLen:
		return fmt.Errorf("%w: %d bytes after the last safetensors tensor", ErrCorrupt, dataLen-pos)
	}
	return nil
}

// parseSafetensorsHeader decodes a header strictly: valid UTF-8, one JSON
// object and nothing after it but spaces, no key twice at any level, no
// field the format does not define, known dtypes.
func parseSafetensorsHeader(hdr []byte) ([]stTensor, map[string]string, error) {
	if !utf8.Valid(hdr) {
		return nil, nil, errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	var tensors []stTensor
	var meta map[string]string
	err := jsonObject(dec, "the header", func(name string) error {
		if name == metadataKey {
			meta = map[string]string{}
			return jsonObject(dec, metadataKey, func(k string) error {
				var v string
				if err := dec.Decode(&v); err != nil {
					return fmt.Errorf("%s[%q]: %v", metadataKey, k, err)
				}
				meta[k] = v
				return nil
			})
		}
		t, err := parseTensorEntry(dec, name)
		if err != nil {
			return err
		}
		tensors = append(tensors, t)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("data after the JSON object")
	}
	return tensors, meta, nil
}

// stFields are the fields of a tensor entry.
var stFields = [...]string{"dtype", "shape", "data_offsets"}

// parseTensorEntry decodes {"dtype": ..., "shape": [...], "data_offsets": [b, e]}.
// It is jsonObject specialised to three known fields, without a map or a
// message built per entry: a header may hold hundreds of thousands.
func parseTensorEntry(dec *json.Decoder, name string) (stTensor, error) {
	t := stTensor{name: name}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return t, cmp.Or(err, fmt.Errorf("tensor %q is not a JSON object", name))
	}
	var seen [len(stFields)]bool
	var offsets []uint64
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return t, err
		}
		field := tok.(string) // the decoder only yields strings as keys
		i := slices.Index(stFields[:], field)
		switch {
		case i < 0:
			return t, fmt.Errorf("tensor %q: unknown field %q", name, field)
		case seen[i]:
			return t, fmt.Errorf("tensor %q has the key %q twice", name, field)
		}
		seen[i] = true
		switch i {
		case 0:
			err = dec.Decode(&t.dtype)
		case 1:
			err = dec.Decode(&t.shape)
		case 2:
			err = dec.Decode(&offsets)
		}
		if err != nil {
			return t, fmt.Errorf("tensor %q: %s: %v", name, field, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return t, err
	}
	switch {
	case t.dtype == "" || t.shape == nil || offsets == nil: // missing or null; [] decodes to an empty slice
		return t, fmt.Errorf("tensor %q: dtype, shape and data_offsets are required", name)
	case len(offsets) != 2:
		return t, fmt.Errorf("tensor %q: data_offsets has %d values, want 2", name, len(offsets))
	}
	t.begin, t.end = offsets[0], offsets[1]
	if t.dt = safetensorsDTypes[t.dtype]; t.dt == nil {
		return t, fmt.Errorf("tensor %q: unknown dtype %q", name, t.dtype)
	}
	return t, nil
}

// jsonObject reads the JSON object dec is at, calling field with each key
// to decode its value, and fails on a key seen twice, which encoding/json
// alone would let the last value win.
func jsonObject(dec *json.Decoder, what string, field func(key string) error) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("%s is not a JSON object", what)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string) // the decoder only yields strings as keys
		if seen[key] {
			return fmt.Errorf("%s has the key %q twice", what, key)
		}
		seen[key] = true
		if err := field(key); err != nil {
			return err
		}
	}
	_, err = dec.Token() // the closing brace
	return err
}
