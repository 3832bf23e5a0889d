package ops

import "golang.org/x/sys/cpu"

// maxRows3AVX512 and sumRows3AVX512 are maxRows3Go and sumRows3Go, 16
// values at a time (rows3_amd64.s); n is the length of the rows.
//
//go:noescape
func maxRows3AVX512(dst, a, b, c *float32, n int)

//go:noescape
func sumRows3AVX512(dst, a, b, c *float32, n int)

// hasRows3 says whether this CPU runs the AVX-512 versions.
var hasRows3 = cpu.X86.HasAVX512F

// maxRows3 stores the largest of a[i], b[i] and c[i] into dst[i] (a NaN
// wins), for rows all as long as a.
func maxRows3(dst, a, b, c []float32) {
	if hasRows3 && len(a) > 0 {
		checkRows3(dst, a, b, c)
		maxRows3AVX512(&dst[0], &a[0], &b[0], &c[0], len(a))
		return
	}
	maxRows3Go(dst, a, b, c)
}

// sumRows3 stores (a[i] + b[i]) + c[i] into dst[i], for rows all as long
// as a.
func sumRows3(dst, a, b, c []float32) {
	if hasRows3 && len(a) > 0 {
		checkRows3(dst, a, b, c)
		sumRows3AVX512(&dst[0], &a[0], &b[0], &c[0], len(a))
		return
	}
	sumRows3Go(dst, a, b, c)
}

// checkRows3 panics unless dst, b and c are as long as a, as the
// assembly, which has no bounds checks, needs.
func checkRows3(dst, a, b, c []float32) {
	if len(dst) < len(a) || len(b) < len(a) || len(c) < len(a) {
		panic("ops: rows of different lengths")
	}
}
