package checkpoint

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

// naiveView computes element i of a view by unravelling i over size.
func naiveView(src []float32, offset int64, size, stride []int64) []float32 {
	n := int64(1)
	for _, s := range size {
		n *= s
	}
	out := make([]float32, n)
	for i := range n {
		pos, rest := offset, i
		for d := len(size) - 1; d >= 0; d-- {
			pos += (rest % size[d]) * stride[d]
			rest /= size[d]
		}
		out[i] = src[pos]
	}
	return out
}

func TestMaterialize(t *testing.T) {
	src := make([]float32, 64)
	for i := range src {
		src[i] = float32(i)
	}
	tests := []struct {
		name         string
		offset       int64
		size, stride []int64
		shared       bool // storage buffer returned as is
		err          string
	}{
		{name: "whole storage", size: []int64{4, 16}, stride: []int64{16, 1}, shared: true},
		{name: "offset", offset: 3, size: []int64{2, 5}, stride: []int64{5, 1}},
		{name: "transpose", size: []int64{16, 4}, stride: []int64{1, 16}},
		{name: "gaps", offset: 1, size: []int64{2, 3, 2}, stride: []int64{20, 6, 2}},
		{name: "broadcast", offset: 7, size: []int64{3, 4}, stride: []int64{0, 1}},
		{name: "size one any stride", size: []int64{1, 64}, stride: []int64{999, 1}, shared: true},
		{name: "size one in strided", offset: 2, size: []int64{3, 1, 2}, stride: []int64{10, 1 << 62, 3}},
		{name: "scalar", offset: 63, size: []int64{}, stride: []int64{}},
		{name: "empty", offset: 64, size: []int64{0, 5}, stride: []int64{5, 1}},
		{name: "too far", offset: 60, size: []int64{5}, stride: []int64{1}, err: "reaches element 64"},
		{name: "offset past end", offset: 65, size: []int64{0}, stride: []int64{1}, err: "past the end"},
		{name: "negative offset", offset: -1, size: []int64{1}, stride: []int64{1}, err: "negative"},
		{name: "negative size", size: []int64{-1}, stride: []int64{1}, err: "negative"},
		{name: "negative stride", offset: 10, size: []int64{2}, stride: []int64{-1}, err: "negative"},
		{name: "rank mismatch", size: []int64{2, 2}, stride: []int64{1}, err: "2 sizes but 1 strides"},
		{name: "size overflow", size: []int64{1 << 62, 4}, stride: []int64{0, 0}, err: "overflows"},
		{name: "stride overflow", size: []int64{3}, stride: []int64{math.MaxInt64/2 + 1}, err: "overflows"},
		{name: "over budget", size: []int64{1000}, stride: []int64{0}, err: "exceeds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &storageRef{numel: int64(len(src)), data: append([]float32(nil), src...)}
			ref := &tensorRef{storage: st, offset: tc.offset, size: tc.size, stride: tc.stride}
			budget := int64(100)
			got, err := ref.materialize(&budget)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := naiveView(src, tc.offset, tc.size, tc.stride)
			if len(got) != len(want) {
				t.Fatalf("%d values, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("value %d = %v, want %v", i, got[i], want[i])
				}
			}
			if isShared := len(got) > 0 && &got[0] == &st.data[0]; isShared != tc.shared {
				t.Errorf("shares the storage buffer: %v, want %v", isShared, tc.shared)
			}
			if tc.shared {
				// A second tensor over the same storage gets a copy.
				again, err := ref.materialize(&budget)
				if err != nil || &again[0] == &st.data[0] {
					t.Errorf("second use: err %v, shared %v", err, err == nil && &again[0] == &st.data[0])
				}
			}
		})
	}
}

// TestHalfToFloat compares every float16 bit pattern with its value
// computed from the IEEE 754 definition.
func TestHalfToFloat(t *testing.T) {
	for h := range 1 << 16 {
		sign, exp, frac := h>>15, (h>>10)&0x1f, h&0x3ff
		var want float64
		switch {
		case exp == 0x1f && frac == 0:
			want = math.Inf(1)
		case exp == 0x1f:
			want = math.NaN()
		case exp == 0:
			want = math.Ldexp(float64(frac), -24)
		default:
			want = math.Ldexp(1+float64(frac)/1024, exp-15)
		}
		if sign == 1 {
			want = -want
		}
		got := halfToFloat(uint16(h))
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) {
				t.Errorf("half %#04x = %v, want NaN", h, got)
			}
			continue
		}
		if got != float32(want) || math.Signbit(float64(got)) != (sign == 1) {
			t.Errorf("half %#04x = %v, want %v", h, got, want)
		}
	}
}

// TestReadStorageChunks decodes a storage longer than the scratch buffer in
// both byte orders.
func TestReadStorageChunks(t *testing.T) {
	n := chunkBytes/2 + 5
	want := make([]float32, n)
	for i := range want {
		want[i] = float32(i%256) - 128 // exact in every type, bfloat16 included
	}
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, name := range []string{"HalfStorage", "FloatStorage", "DoubleStorage", "BFloat16Storage"} {
			d := storageDTypes[name]
			raw := make([]byte, 0, int64(n)*d.size)
			for _, v := range want {
				switch d.size {
				case 2:
					bits := math.Float32bits(v) >> 16
					if name == "HalfStorage" {
						bits = uint32(halfBits(v))
					}
					raw = order.(binary.AppendByteOrder).AppendUint16(raw, uint16(bits))
				case 4:
					raw = order.(binary.AppendByteOrder).AppendUint32(raw, math.Float32bits(v))
				case 8:
					raw = order.(binary.AppendByteOrder).AppendUint64(raw, math.Float64bits(float64(v)))
				}
			}
			got, err := readStorage(bytes.NewReader(raw), d, int64(n), order)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s %v: value %d = %v, want %v", name, order, i, got[i], want[i])
				}
			}
		}
	}
}

// halfBits encodes an integer-valued float32 of magnitude below 2048 as
// float16, which represents it exactly.
func halfBits(v float32) uint16 {
	var sign uint16
	if v < 0 {
		sign, v = 0x8000, -v
	}
	if v == 0 {
		return sign
	}
	e := int(math.Floor(math.Log2(float64(v))))
	frac := uint16((float64(v)/math.Ldexp(1, e) - 1) * 1024)
	return sign | uint16(e+15)<<10 | frac
}
