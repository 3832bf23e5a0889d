package gemm

// Reference is the plain-loop definition of Fused, with the same arguments
// and result up to floating-point rounding. Tests compare every fast path
// against it; it is far too slow for real use.
func Reference(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		clear(row)
		for p := 0; p < k; p++ {
			av := a[i*lda+p]
			brow := b[p*ldb : p*ldb+n]
			for j, bv := range brow {
				row[j] += av * bv
			}
		}
		applyEpilogue(row, i, ep)
	}
}

// applyEpilogue applies ep to row i of C.
func applyEpilogue(row []float32, i int, ep Epilogue) {
	if ep.Bias != nil {
		bi := ep.Bias[i]
		for j := range row {
			row[j] += bi
		}
	}
	if ep.Residual != nil {
		res := ep.Residual[i*ep.LDR : i*ep.LDR+len(row)]
		for j := range row {
			row[j] += res[j]
		}
	}
	if ep.ReLU {
		for j, v := range row {
			if v < 0 {
				row[j] = 0
			}
		}
	}
}

// ReferenceBF16 is the plain-loop definition of a product in BF16: A and
// B rounded to bfloat16 by RoundBF16, multiplied as Reference does. The
// BF16 kernels agree with it up to float32 rounding.
func ReferenceBF16(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
	round := func(s []float32) []float32 {
		r := make([]float32, len(s))
		for i, v := range s {
			r[i] = RoundBF16(v)
		}
		return r
	}
	Reference(m, n, k, round(a), lda, round(b), ldb, c, ldc, ep)
}
