package ops

// maxRows3Go is the portable maxRows3, and the definition the assembly is
// tested against.
func maxRows3Go(dst, a, b, c []float32) {
	dst, b, c = dst[:len(a)], b[:len(a)], c[:len(a)]
	for i, v := range a {
		dst[i] = max(v, b[i], c[i])
	}
}

// sumRows3Go is the portable sumRows3.
func sumRows3Go(dst, a, b, c []float32) {
	dst, b, c = dst[:len(a)], b[:len(a)], c[:len(a)]
	for i, v := range a {
		dst[i] = (v + b[i]) + c[i]
	}
}

// addGo is the portable Add.
func addGo(dst, a, b []float32) {
	b = b[:len(a)]
	dst = dst[:len(a)]
	for i, v := range a {
		dst[i] = v + b[i]
	}
}
