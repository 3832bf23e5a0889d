package checkpoint

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"unsafe"
)

// dtype describes one torch storage class.
type dtype struct {
	name string // PyTorch's dtype name, for messages
	size int64  // bytes per element
	// decode converts little- or big-endian elements to float32; nil for
	// the types a state dict of this project cannot use.
	decode func(dst []float32, src []byte, order binary.ByteOrder)
}

// storageDTypes maps torch.<Name>Storage to its element type.
var storageDTypes = map[string]*dtype{
	"FloatStorage":         {name: "float32", size: 4, decode: decodeF32},
	"HalfStorage":          {name: "float16", size: 2, decode: decodeF16},
	"BFloat16Storage":      {name: "bfloat16", size: 2, decode: decodeBF16},
	"DoubleStorage":        {name: "float64", size: 8, decode: decodeF64},
	"LongStorage":          {name: "int64", size: 8},
	"IntStorage":           {name: "int32", size: 4},
	"ShortStorage":         {name: "int16", size: 2},
	"CharStorage":          {name: "int8", size: 1},
	"ByteStorage":          {name: "uint8", size: 1},
	"BoolStorage":          {name: "bool", size: 1},
	"ComplexFloatStorage":  {name: "complex64", size: 8},
	"ComplexDoubleStorage": {name: "complex128", size: 16},
	"QInt8Storage":         {name: "qint8", size: 1},
	"QUInt8Storage":        {name: "quint8", size: 1},
	"QInt32Storage":        {name: "qint32", size: 4},
}

// float32Type is the storage type that can be read without conversion.
var float32Type = storageDTypes["FloatStorage"]

// nbytes is the size of n elements, or an error when it overflows.
func (d *dtype) nbytes(n int64) (int64, error) {
	if n < 0 || n > math.MaxInt64/d.size {
		return 0, fmt.Errorf("%w: storage of %d %s elements is too large", ErrCorrupt, n, d.name)
	}
	return n * d.size, nil
}

// hostOrder is the byte order of this machine.
var hostOrder binary.ByteOrder = func() binary.ByteOrder {
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		return binary.LittleEndian
	}
	return binary.BigEndian
}()

// chunkBytes is the size of the scratch buffer used to convert non-float32
// storages piecewise.
const chunkBytes = 64 << 10

// readStorage reads n elements of type d in the given byte order from r
// and returns them as float32. Float32 data in the host's byte order is read
// straight into the returned slice; other types go through a small scratch
// buffer, so no second full-size copy is made. The caller has checked that
// the input holds the n*d.size bytes.
func readStorage(r io.Reader, d *dtype, n int64, order binary.ByteOrder) ([]float32, error) {
	dst := make([]float32, n)
	if d == float32Type && order == hostOrder {
		if n == 0 {
			return dst, nil
		}
		raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), 4*n)
		if _, err := io.ReadFull(r, raw); err != nil {
			return nil, err
		}
		return dst, nil
	}
	perChunk := chunkBytes / d.size
	buf := make([]byte, min(n, perChunk)*d.size)
	for done := int64(0); done < n; {
		k := min(n-done, perChunk)
		if _, err := io.ReadFull(r, buf[:k*d.size]); err != nil {
			return nil, err
		}
		d.decode(dst[done:done+k], buf[:k*d.size], order)
		done += k
	}
	return dst, nil
}

func decodeF32(dst []float32, src []byte, order binary.ByteOrder) {
	for i := range dst {
		dst[i] = math.Float32frombits(order.Uint32(src[4*i:]))
	}
}

func decodeF64(dst []float32, src []byte, order binary.ByteOrder) {
	for i := range dst {
		dst[i] = float32(math.Float64frombits(order.Uint64(src[8*i:])))
	}
}

func decodeF16(dst []float32, src []byte, order binary.ByteOrder) {
	for i := range dst {
		dst[i] = halfToFloat(order.Uint16(src[2*i:]))
	}
}

func decodeBF16(dst []float32, src []byte, order binary.ByteOrder) {
	for i := range dst {
		// bfloat16 is the top half of a float32.
		dst[i] = math.Float32frombits(uint32(order.Uint16(src[2*i:])) << 16)
	}
}

// halfToFloat converts an IEEE 754 binary16 value to float32 exactly,
// including subnormals, infinities and NaN payloads.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp != 0: // normal: rebias the exponent from 15 to 127
		return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
	case frac == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal half: normalise the fraction into a float32 normal.
	e := uint32(113)
	for frac&0x400 == 0 {
		frac <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (frac&0x3ff)<<13)
}
