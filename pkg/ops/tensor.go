// Package ops holds the float32 tensors and the operators the network is
// built from: convolution, batch-norm folding, pooling, linear layers and
// softmax. Each optimised operator has a plain reference implementation
// beside it, and tests compare the two.
package ops

import (
	"fmt"
	"strings"
)

// Tensor is a dense float32 array in row-major (NCHW for images) order.
type Tensor struct {
	Shape []int
	Data  []float32
}

// New returns a zero tensor of the given shape.
func New(shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, NumElements(shape))}
}

// FromData wraps data as a tensor of the given shape. It fails when the
// length of data does not match the shape.
func FromData(data []float32, shape ...int) (*Tensor, error) {
	if n := NumElements(shape); n != len(data) {
		return nil, fmt.Errorf("tensor of shape %s needs %d values, have %d", ShapeString(shape), n, len(data))
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: data}, nil
}

// NumElements is the product of the dimensions of shape (1 for a scalar).
func NumElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Len returns the number of elements of t.
func (t *Tensor) Len() int { return len(t.Data) }

// ShapeString formats a shape as PyTorch prints it in summaries: "64x3x7x7",
// or "scalar" for a zero-dimensional shape.
func ShapeString(shape []int) string {
	if len(shape) == 0 {
		return "scalar"
	}
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = fmt.Sprint(d)
	}
	return strings.Join(parts, "x")
}

// SameShape reports whether a and b have the same dimensions.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
