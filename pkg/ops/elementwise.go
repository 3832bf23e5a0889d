package ops

// Add stores a + b element-wise into dst (len(a) values). dst may be a or b.
func Add(dst, a, b []float32) {
	b = b[:len(a)]
	dst = dst[:len(a)]
	for i, v := range a {
		dst[i] = v + b[i]
	}
}
