package ops

// Linear is a fully connected layer, y = W x + b, on one vector.
type Linear struct {
	In, Out int
	Weight  []float32 // Out x In, PyTorch's layout
	Bias    []float32 // Out values, or nil
}

// Forward computes dst (Out values) from src (In values).
func (l *Linear) Forward(dst, src []float32) {
	src = src[:l.In]
	for o := range dst[:l.Out] {
		row := l.Weight[o*l.In : (o+1)*l.In]
		// Four partial sums break the add dependency chain so the loop is not
		// bound by floating-point add latency.
		var s0, s1, s2, s3 float32
		i := 0
		for ; i+4 <= len(row); i += 4 {
			s0 += row[i] * src[i]
			s1 += row[i+1] * src[i+1]
			s2 += row[i+2] * src[i+2]
			s3 += row[i+3] * src[i+3]
		}
		for ; i < len(row); i++ {
			s0 += row[i] * src[i]
		}
		s := (s0 + s1) + (s2 + s3)
		if l.Bias != nil {
			s += l.Bias[o]
		}
		dst[o] = s
	}
}

// LinearRef is the plain definition of a linear layer on the rows of the
// N x In tensor x, with weight Out x In and optional bias, in float64.
func LinearRef(x, weight *Tensor, bias []float32) *Tensor {
	n, in := x.Shape[0], x.Shape[1]
	outN := weight.Shape[0]
	out := New(n, outN)
	for r := range n {
		for o := range outN {
			var s float64
			if bias != nil {
				s = float64(bias[o])
			}
			for i := range in {
				s += float64(x.Data[r*in+i]) * float64(weight.Data[o*in+i])
			}
			out.Data[r*outN+o] = float32(s)
		}
	}
	return out
}
