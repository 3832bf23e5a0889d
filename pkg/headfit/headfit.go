// Package headfit fits a new linear classifier on frozen features:
// multinomial logistic (softmax) regression with L2 regularisation,
// minimised with L-BFGS, plus the stratified train/validation split and
// the confusion matrix used to judge it.
package headfit

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/optimize"
)

// Options configures Fit.
type Options struct {
	// L2 is the weight of the penalty L2/2 * ||W||^2 (the bias is not
	// penalised), on the standardised features (see Fit).
	L2 float64
	// MaxIterations bounds the L-BFGS iterations; <= 0 means
	// DefaultMaxIterations.
	MaxIterations int
}

// DefaultMaxIterations is enough for the problem sizes of a user's own
// photo folders to converge.
const DefaultMaxIterations = 500

// gradientTolerance stops L-BFGS when the gradient's infinity norm is this
// small: far below what changes a prediction.
const gradientTolerance = 1e-6

// Head is a fitted linear classifier on raw features: logits = W x + b.
type Head struct {
	Classes, Features int
	Weight            []float32 // Classes x Features, PyTorch's nn.Linear layout
	Bias              []float32 // Classes
	Loss              float64   // final objective (mean cross-entropy + penalty)
	Iterations        int       // L-BFGS major iterations
	Converged         bool      // false when it stopped at MaxIterations
}

// Fit fits a classes-way softmax regression to the rows of x (each of the
// same length) with labels y in [0, classes). Features are standardised
// (mean 0, variance 1 over x) for the optimisation, which conditions it
// and makes L2 independent of the features' scale; the standardisation is
// folded back into the returned weights, which apply to raw features. Fit
// is deterministic: it starts from zero and L-BFGS is sequential.
func Fit(x [][]float32, y []int, classes int, opts Options) (*Head, error) {
	n := len(x)
	switch {
	case n == 0:
		return nil, errors.New("headfit: no training examples")
	case len(y) != n:
		return nil, fmt.Errorf("headfit: %d examples but %d labels", n, len(y))
	case classes < 2:
		return nil, fmt.Errorf("headfit: %d classes, need at least 2", classes)
	case !(opts.L2 >= 0) || math.IsInf(opts.L2, 0):
		return nil, fmt.Errorf("headfit: L2 must be a finite number >= 0, got %v", opts.L2)
	}
	d := len(x[0])
	for i, row := range x {
		if len(row) != d || d == 0 {
			return nil, fmt.Errorf("headfit: example %d has %d features, the first %d", i, len(row), d)
		}
		if y[i] < 0 || y[i] >= classes {
			return nil, fmt.Errorf("headfit: example %d has label %d, outside [0, %d)", i, y[i], classes)
		}
	}
	p := newProblem(x, y, classes, opts.L2)
	iters := opts.MaxIterations
	if iters <= 0 {
		iters = DefaultMaxIterations
	}
	settings := &optimize.Settings{
		GradientThreshold: gradientTolerance,
		MajorIterations:   iters,
		// The objective is convex and smooth: the only stopping rules are
		// the gradient and the iteration cap.
		Converger: &optimize.FunctionConverge{Absolute: 0, Relative: 0, Iterations: math.MaxInt32},
	}
	res, err := optimize.Minimize(optimize.Problem{Func: p.loss, Grad: p.grad}, make([]float64, classes*(d+1)), settings, &optimize.LBFGS{})
	if err != nil && (res == nil || res.Status != optimize.IterationLimit) {
		return nil, fmt.Errorf("headfit: L-BFGS: %w", err)
	}
	h := p.head(res.X)
	h.Loss, h.Iterations = res.F, res.MajorIterations
	h.Converged = res.Status == optimize.GradientThreshold
	return h, nil
}

// problem is the regularised cross-entropy on standardised features. The
// parameters are W (classes x d, row-major) followed by b (classes).
type problem struct {
	x          [][]float64 // standardised features
	y          []int
	classes, d int
	l2         float64
	mean, std  []float64

	// The loss and gradient come from one pass over the data; L-BFGS asks
	// for both at the same point, so the last point's are kept.
	at         []float64
	f          float64
	g          []float64
	probs      []float64
	logitsWork []float64
}

func newProblem(x [][]float32, y []int, classes int, l2 float64) *problem {
	n, d := len(x), len(x[0])
	p := &problem{y: y, classes: classes, d: d, l2: l2, mean: make([]float64, d), std: make([]float64, d)}
	for _, row := range x {
		for j, v := range row {
			p.mean[j] += float64(v)
		}
	}
	for j := range p.mean {
		p.mean[j] /= float64(n)
	}
	for _, row := range x {
		for j, v := range row {
			dv := float64(v) - p.mean[j]
			p.std[j] += dv * dv
		}
	}
	for j := range p.std {
		p.std[j] = math.Sqrt(p.std[j] / float64(n))
		if p.std[j] == 0 {
			p.std[j] = 1 // a constant feature carries nothing; keep it at 0
		}
	}
	p.x = make([][]float64, n)
	for i, row := range x {
		p.x[i] = make([]float64, d)
		for j, v := range row {
			p.x[i][j] = (float64(v) - p.mean[j]) / p.std[j]
		}
	}
	p.g = make([]float64, classes*(d+1))
	p.probs = make([]float64, classes)
	return p
}

func (p *problem) loss(w []float64) float64 {
	p.eval(w)
	return p.f
}

func (p *problem) grad(grad, w []float64) {
	p.eval(w)
	copy(grad, p.g)
}

// eval computes the objective and its gradient at w, unless w is the last
// point evaluated.
func (p *problem) eval(w []float64) {
	if p.at != nil && slices.Equal(p.at, w) {
		return
	}
	p.at = append(p.at[:0], w...)
	k, d := p.classes, p.d
	weights, bias := w[:k*d], w[k*d:]
	clear(p.g)
	gw, gb := p.g[:k*d], p.g[k*d:]
	inv := 1 / float64(len(p.x))
	f := 0.0
	for i, row := range p.x {
		// Softmax of the logits, shifted by the largest for stability.
		hi := math.Inf(-1)
		for c := range k {
			z := bias[c]
			for j, v := range weights[c*d : (c+1)*d] {
				z += v * row[j]
			}
			p.probs[c] = z
			hi = max(hi, z)
		}
		sum := 0.0
		for c := range k {
			p.probs[c] = math.Exp(p.probs[c] - hi)
			sum += p.probs[c]
		}
		f -= (math.Log(p.probs[p.y[i]] / sum)) * inv
		for c := range k {
			r := p.probs[c] / sum
			if c == p.y[i] {
				r--
			}
			r *= inv
			gb[c] += r
			g := gw[c*d : (c+1)*d]
			for j, v := range row {
				g[j] += r * v
			}
		}
	}
	for j, v := range weights {
		f += 0.5 * p.l2 * v * v
		gw[j] += p.l2 * v
	}
	p.f = f
}

// head folds the standardisation into the parameters w: with z = (x-m)/s,
// W z + b = (W/s) x + (b - W m/s).
func (p *problem) head(w []float64) *Head {
	k, d := p.classes, p.d
	h := &Head{Classes: k, Features: d, Weight: make([]float32, k*d), Bias: make([]float32, k)}
	for c := range k {
		b := w[k*d+c]
		for j := range d {
			wj := w[c*d+j] / p.std[j]
			h.Weight[c*d+j] = float32(wj)
			b -= wj * p.mean[j]
		}
		h.Bias[c] = float32(b)
	}
	return h
}

// Predict returns the class with the largest logit for each row of x
// (the first on ties).
func (h *Head) Predict(x [][]float32) []int {
	out := make([]int, len(x))
	for i, row := range x {
		best, bestZ := 0, math.Inf(-1)
		for c := range h.Classes {
			z := float64(h.Bias[c])
			for j, v := range h.Weight[c*h.Features : (c+1)*h.Features] {
				z += float64(v) * float64(row[j])
			}
			if z > bestZ {
				best, bestZ = c, z
			}
		}
		out[i] = best
	}
	return out
}
