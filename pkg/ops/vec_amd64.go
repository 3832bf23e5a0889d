package ops

import "golang.org/x/sys/cpu"

// maxRows3AVX512, sumRows3AVX512 and addAVX512 are maxRows3Go, sumRows3Go
// and addGo 16 values at a time (vec_amd64.s); n is the length of the
// rows.
//
//go:noescape
func maxRows3AVX512(dst, a, b, c *float32, n int)

//go:noescape
func sumRows3AVX512(dst, a, b, c *float32, n int)

//go:noescape
func addAVX512(dst, a, b *float32, n int)

// hasAVX512 says whether this CPU runs the AVX-512 versions.
var hasAVX512 = cpu.X86.HasAVX512F

// Add stores a + b element-wise into dst (len(a) values). dst may be a or b.
func Add(dst, a, b []float32) {
	if hasAVX512 && len(a) > 0 {
		if len(dst) < len(a) || len(b) < len(a) {
			panic("ops: Add of slices of different lengths")
		}
		addAVX512(&dst[0], &a[0], &b[0], len(a))
		return
	}
	addGo(dst, a, b)
}

// maxRows3 stores the largest of a[i], b[i] and c[i] into dst[i] (a NaN
// wins), for rows all as long as a.
func maxRows3(dst, a, b, c []float32) {
	if hasAVX512 && len(a) > 0 {
		checkRows3(dst, a, b, c)
		maxRows3AVX512(&dst[0], &a[0], &b[0], &c[0], len(a))
		return
	}
	maxRows3Go(dst, a, b, c)
}

// sumRows3 stores (a[i] + b[i]) + c[i] into dst[i], for rows all as long
// as a.
func sumRows3(dst, a, b, c []float32) {
	if hasAVX512 && len(a) > 0 {
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
