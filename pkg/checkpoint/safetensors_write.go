package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"unsafe"

	"github.com/res2net/res2net/pkg/ops"
)

// stHeaderAlign is the multiple the header is padded to with spaces, as
// the Rust library does, so that the data starts 8-byte aligned.
const stHeaderAlign = 8

// stEntry is a tensor's entry in a written header; the field order is the
// one the Python library writes.
type stEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// WriteSafetensors writes tensors as a safetensors file of float32 values,
// with metadata (may be nil) as its "__metadata__" entry. The output is
// deterministic: names in sorted order, in the header and in the data.
// Every tensor's Data must match its Shape.
func WriteSafetensors(w io.Writer, tensors map[string]*ops.Tensor, metadata map[string]string) error {
	if len(tensors) == 0 {
		return errors.New("write safetensors: no tensors")
	}
	names := make([]string, 0, len(tensors))
	for name := range tensors {
		names = append(names, name)
	}
	slices.Sort(names)
	// A map marshals with its keys sorted, which makes the header
	// deterministic.
	header := make(map[string]any, len(tensors)+1)
	var offset int64
	for _, name := range names {
		t := tensors[name]
		if err := checkWritable(name, t); err != nil {
			return fmt.Errorf("write safetensors: %w", err)
		}
		end := offset + 4*int64(len(t.Data))
		// A scalar's nil shape must be written [], not null.
		shape := append([]int{}, t.Shape...)
		header[name] = stEntry{DType: "F32", Shape: shape, DataOffsets: [2]int64{offset, end}}
		offset = end
	}
	if metadata != nil {
		header[metadataKey] = metadata
	}
	var hdr bytes.Buffer
	enc := json.NewEncoder(&hdr)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(header); err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	hdr.Truncate(hdr.Len() - 1) // Encode's newline
	for (safetensorsLenSize+hdr.Len())%stHeaderAlign != 0 {
		hdr.WriteByte(' ')
	}
	if hdr.Len() > maxSafetensorsHeader {
		return fmt.Errorf("write safetensors: header of %d bytes, more than readers accept", hdr.Len())
	}

	bw := bufio.NewWriterSize(w, chunkBytes)
	binary.Write(bw, binary.LittleEndian, uint64(hdr.Len())) // errors surface at Flush
	bw.Write(hdr.Bytes())
	for _, name := range names {
		writeF32(bw, tensors[name].Data)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	return nil
}

// checkWritable checks one tensor given to WriteSafetensors.
func checkWritable(name string, t *ops.Tensor) error {
	switch {
	case name == metadataKey:
		return fmt.Errorf("a tensor cannot be named %q", metadataKey)
	case t == nil:
		return fmt.Errorf("tensor %q is nil", name)
	}
	n := 1
	for _, d := range t.Shape {
		if d < 0 || (d != 0 && n > math.MaxInt/4/d) {
			return fmt.Errorf("tensor %q has shape %v", name, t.Shape)
		}
		n *= d
	}
	if n != len(t.Data) {
		return fmt.Errorf("tensor %q has %d values for shape %v", name, len(t.Data), t.Shape)
	}
	return nil
}

// writeF32 writes data as little-endian float32 values: the slice's own
// bytes on a little-endian machine, else converted through a small buffer.
func writeF32(w *bufio.Writer, data []float32) {
	if len(data) == 0 {
		return
	}
	if hostOrder == binary.LittleEndian {
		w.Write(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(data))), 4*len(data)))
		return
	}
	var buf [chunkBytes]byte
	for len(data) > 0 {
		k := min(len(data), chunkBytes/4)
		for i, v := range data[:k] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		w.Write(buf[:4*k])
		data = data[k:]
	}
}
