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
