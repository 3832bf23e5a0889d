package gemm

import (
	"fmt"
	"math"
)

// Precision is the arithmetic of a product with packed weights.
type Precision int

const (
	// FP32 multiplies the float32 operands as they are: the default,
	// exact up to float32 rounding.
	FP32 Precision = iota
	// BF16 rounds both operands to bfloat16 (8 bits of mantissa, to
	// nearest, ties to even) and accumulates the products in float32,
	// with VDPBF16PS: about twice FP32's speed, with errors of about
	// 2^-9 relative per operand.
	BF16
)

// String returns "fp32" or "bf16", the names ParsePrecision accepts.
func (p Precision) String() string {
	switch p {
	case FP32:
		return "fp32"
	case BF16:
		return "bf16"
	}
	return fmt.Sprintf("Precision(%d)", int(p))
}

// ParsePrecision returns the precision named s, "fp32" or "bf16".
func ParsePrecision(s string) (Precision, error) {
	switch s {
	case "fp32":
		return FP32, nil
	case "bf16":
		return BF16, nil
	}
	return FP32, fmt.Errorf("unknown precision %q (want fp32 or bf16)", s)
}

// HasBF16 reports whether this CPU runs BF16 products (AVX512_BF16 and
// AVX512BW); without them PackAPrecision packs BF16 weights as FP32.
func HasBF16() bool { return bestBF16 != nil }

// RoundBF16 returns x rounded to the nearest bfloat16 (ties to even), as
// VCVTNE2PS2BF16 rounds: NaNs stay NaN (made quiet) and subnormal inputs
// become zero of the same sign.
func RoundBF16(x float32) float32 {
	return math.Float32frombits(uint32(bf16Bits(x)) << 16)
}

// bf16Bits returns the bfloat16 encoding of RoundBF16(x).
func bf16Bits(x float32) uint16 {
	b := math.Float32bits(x)
	switch {
	case b&0x7fffffff > 0x7f800000: // NaN
		return uint16(b>>16) | 0x40
	case b&0x7f800000 == 0: // zero or subnormal
		return uint16(b>>16) & 0x8000
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// packPairs writes the values of src rounded to bfloat16 into dst as
// pairs, two consecutive values per 32-bit value with the first in the
// lower half, zero-padding an odd last pair. dst holds the pairs' bits.
func packPairs(dst, src []float32) {
	for q := 0; q < len(src); q += 2 {
		lo := uint32(bf16Bits(src[q]))
		var hi uint32
		if q+1 < len(src) {
			hi = uint32(bf16Bits(src[q+1]))
		}
		dst[q/2] = math.Float32frombits(hi<<16 | lo)
	}
}
