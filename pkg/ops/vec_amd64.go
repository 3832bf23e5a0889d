package ops

import "golang.org/x/sys/cpu"

// The operations of vec3AVX512.
const (
	vecMax3 = iota
	vecSum3
	vecAdd
)

// vec3AVX512 is maxRows3Go, sumRows3Go or addGo (op), 16 values at a time
// (vec_amd64.s), on rows of n values; c is nil for vecAdd.
//
//go:noescape
func vec3AVX512(op int, dst, a, b, c *float32, n int)

// hasAVX512 says whether this CPU runs vec3AVX512.
var hasAVX512 = cpu.X86.HasAVX512F

// vec3 runs vec3AVX512 on rows as long as a, or reports false when it
// cannot. The assembly has no bounds checks, so it panics unless the
// other rows are that long too.
func vec3(op int, dst, a, b, c []float32) bool {
	if !hasAVX512 || len(a) == 0 {
		return false
	}
	if len(dst) < len(a) || len(b) < len(a) || c != nil && len(c) < len(a) {
		panic("ops: rows of different lengths")
	}
	var cp *float32
	if c != nil {
		cp = &c[0]
	}
	vec3AVX512(op, &dst[0], &a[0], &b[0], cp, len(a))
	return true
}

// maxRows3 stores the largest of a[i], b[i] and c[i] into dst[i] (a NaN
// wins), for rows all as long as a.
func maxRows3(dst, a, b, c []float32) {
	if !vec3(vecMax3, dst, a, b, c) {
		maxRows3Go(dst, a, b, c)
	}
}

// sumRows3 stores (a[i] + b[i]) + c[i] into dst[i], for rows all as long
// as a.
func sumRows3(dst, a, b, c []float32) {
	if !vec3(vecSum3, dst, a, b, c) {
		sumRows3Go(dst, a, b, c)
	}
}

// Add stores a + b element-wise into dst (len(a) values). dst may be a or b.
func Add(dst, a, b []float32) {
	if !vec3(vecAdd, dst, a, b, nil) {
		addGo(dst, a, b)
	}
}
