package npy

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/res2net/res2net/pkg/ops"
)

// headerAlign is the alignment NumPy pads the magic, lengths and header
// dictionary to, so that the data starts aligned.
const headerAlign = 64

// Write writes data as a little-endian float32, C-order, version 1.0 .npy
// array of the given shape, as numpy.save does.
func Write(w io.Writer, data []float32, shape ...int) error {
	if n := ops.NumElements(shape); n != len(data) {
		return fmt.Errorf("npy: shape %s needs %d values, have %d", ops.ShapeString(shape), n, len(data))
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = fmt.Sprint(d)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += "," // a one-element Python tuple
	}
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	const prefix = 10 // magic (6), version (2), header length (2)
	pad := headerAlign - (prefix+len(header)+1)%headerAlign
	header += strings.Repeat(" ", pad%headerAlign) + "\n"
	if len(header) > math.MaxUint16 {
		return fmt.Errorf("npy: %d-dimensional shape too long for a version 1.0 header", len(shape))
	}
	bw := bufio.NewWriter(w)
	bw.WriteString("\x93NUMPY\x01\x00")
	binary.Write(bw, binary.LittleEndian, uint16(len(header)))
	bw.WriteString(header)
	var b [4]byte
	for _, v := range data {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		bw.Write(b[:])
	}
	return bw.Flush()
}
