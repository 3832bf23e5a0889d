//go:build !amd64

package ops

// maxRows3 stores the largest of a[i], b[i] and c[i] into dst[i] (a NaN
// wins), for rows all as long as a.
func maxRows3(dst, a, b, c []float32) { maxRows3Go(dst, a, b, c) }

// sumRows3 stores (a[i] + b[i]) + c[i] into dst[i], for rows all as long
// as a.
func sumRows3(dst, a, b, c []float32) { sumRows3Go(dst, a, b, c) }

// Add stores a + b element-wise into dst (len(a) values). dst may be a or b.
func Add(dst, a, b []float32) { addGo(dst, a, b) }
