// Package npy reads the NumPy .npy arrays that the project's fixture
// scripts write, so tests can compare against PyTorch and Pillow outputs,
// and writes float32 arrays (the embeddings res2net embed saves).
//
// Only what the fixtures use is read: version 1-3 headers, little-endian
// float32 or uint8 data in C order.
package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/res2net/res2net/pkg/ops"
)

// elemSize is the size in bytes of one element of each supported dtype.
var elemSize = map[string]int{"<f4": 4, "|u1": 1}

var (
	descrRE = regexp.MustCompile(`'descr':\s*'([^']*)'`)
	orderRE = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	shapeRE = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// Read loads a float32 array.
func Read(path string) (*ops.Tensor, error) {
	data, shape, err := read(path, "<f4")
	if err != nil {
		return nil, err
	}
	vals := make([]float32, len(data)/4)
	for i := range vals {
		vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return ops.FromData(vals, shape...)
}

// ReadUint8 loads a uint8 array and returns its bytes and shape.
func ReadUint8(path string) ([]byte, []int, error) {
	return read(path, "|u1")
}

func read(path, descr string) ([]byte, []int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	data, shape, err := parse(raw, descr)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, shape, nil
}

func parse(raw []byte, descr string) ([]byte, []int, error) {
	if len(raw) < 10 || !bytes.HasPrefix(raw, []byte("\x93NUMPY")) {
		return nil, nil, errors.New("not a .npy file")
	}
	var hlen, start int
	switch raw[6] {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(raw[8:])), 10
	case 2, 3:
		if len(raw) < 12 {
			return nil, nil, errors.New("truncated header")
		}
		hlen, start = int(binary.LittleEndian.Uint32(raw[8:])), 12
	default:
		return nil, nil, fmt.Errorf("unsupported .npy version %d", raw[6])
	}
	if start+hlen > len(raw) {
		return nil, nil, errors.New("truncated header")
	}
	header := string(raw[start : start+hlen])
	m := descrRE.FindStringSubmatch(header)
	if m == nil || m[1] != descr {
		return nil, nil, fmt.Errorf("dtype %q, want %q", header, descr)
	}
	if m := orderRE.FindStringSubmatch(header); m == nil || m[1] != "False" {
		return nil, nil, errors.New("only C-order arrays are supported")
	}
	m = shapeRE.FindStringSubmatch(header)
	if m == nil {
		return nil, nil, errors.New("no shape in header")
	}
	var shape []int
	for _, f := range strings.Split(m[1], ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := strconv.Atoi(f)
		if err != nil || d < 0 {
			return nil, nil, fmt.Errorf("bad shape %q", m[1])
		}
		shape = append(shape, d)
	}
	size := ops.NumElements(shape) * elemSize[descr]
	data := raw[start+hlen:]
	if len(data) != size {
		return nil, nil, fmt.Errorf("shape %v needs %d bytes, file has %d", shape, size, len(data))
	}
	return data, shape, nil
}
