package ops

// ReLU clamps x at zero in place. The network fuses its ReLUs into the GEMM
// epilogue; this standalone form serves unfused paths such as references.
func ReLU(x []float32) {
	for i, v := range x {
		x[i] = max(v, 0)
	}
}

// Add stores a + b element-wise into dst (len(a) values). dst may be a or b.
func Add(dst, a, b []float32) {
	b = b[:len(a)]
	dst = dst[:len(a)]
	for i, v := range a {
		dst[i] = v + b[i]
	}
}
