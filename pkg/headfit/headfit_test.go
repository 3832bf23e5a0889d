package headfit

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// clusters makes n examples per class around well-separated random
// centres in d dimensions, with features on very different scales.
func clusters(classes, n, d int, spread float64, seed uint64) ([][]float32, []int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	centres := make([][]float64, classes)
	for c := range centres {
		centres[c] = make([]float64, d)
		for j := range centres[c] {
			centres[c][j] = rng.NormFloat64() * 3
		}
	}
	var x [][]float32
	var y []int
	for i := range classes * n {
		c := i % classes
		row := make([]float32, d)
		for j := range row {
			scale := math.Pow(10, float64(j%3)-1) // 0.1, 1, 10
			row[j] = float32((centres[c][j] + spread*rng.NormFloat64()) * scale)
		}
		x, y = append(x, row), append(y, c)
	}
	return x, y
}

func TestGradient(t *testing.T) {
	x, y := clusters(3, 5, 4, 2, 7)
	p := newProblem(x, y, 3, 0.3)
	rng := rand.New(rand.NewPCG(3, 3))
	w := make([]float64, 3*5)
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	g := make([]float64, len(w))
	p.grad(g, w)
	const h = 1e-6
	for i := range w {
		wp, wm := slices.Clone(w), slices.Clone(w)
		wp[i] += h
		wm[i] -= h
		num := (p.loss(wp) - p.loss(wm)) / (2 * h)
		if math.Abs(num-g[i]) > 1e-6*max(1, math.Abs(num)) {
			t.Fatalf("d/dw[%d]: analytic %v, numeric %v", i, g[i], num)
		}
	}
}

func TestFitSeparable(t *testing.T) {
	x, y := clusters(4, 20, 6, 0.3, 11)
	h, err := Fit(x, y, 4, Options{L2: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	if !h.Converged {
		t.Errorf("did not converge in %d iterations", h.Iterations)
	}
	pred := h.Predict(x)
	m, _ := Confusion(y, pred, 4)
	if acc := Accuracy(m); acc != 1 {
		t.Fatalf("training accuracy %v on separable clusters, confusion %v", acc, m)
	}
	// Deterministic: the same data gives the same bits.
	h2, _ := Fit(x, y, 4, Options{L2: 1e-3})
	if !slices.Equal(h.Weight, h2.Weight) || !slices.Equal(h.Bias, h2.Bias) {
		t.Fatal("two fits of the same data differ")
	}
}

func TestFitOptimal(t *testing.T) {
	// Overlapping clusters: the optimum is interior; its gradient must
	// vanish, and the folded head must give the standardised logits.
	x, y := clusters(3, 30, 5, 3, 5)
	h, err := Fit(x, y, 3, Options{L2: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	p := newProblem(x, y, 3, 0.1)
	// Unfold the head back into standardised parameters.
	k, d := 3, 5
	w := make([]float64, k*(d+1))
	for c := range k {
		b := float64(h.Bias[c])
		for j := range d {
			w[c*d+j] = float64(h.Weight[c*d+j]) * p.std[j]
			b += float64(h.Weight[c*d+j]) * p.mean[j]
		}
		w[k*d+c] = b
	}
	g := make([]float64, len(w))
	p.grad(g, w)
	for i, v := range g {
		// float32 rounding of the returned weights bounds what can vanish.
		if math.Abs(v) > 1e-4 {
			t.Fatalf("gradient[%d] = %v at the fitted head", i, v)
		}
	}
	if math.Abs(p.loss(w)-h.Loss) > 1e-5 {
		t.Fatalf("loss at the folded head %v, reported %v", p.loss(w), h.Loss)
	}
	// Stronger regularisation shrinks the weights.
	h10, _ := Fit(x, y, 3, Options{L2: 10})
	if norm2(h10.Weight) >= norm2(h.Weight) {
		t.Fatalf("L2 10 gave |W|^2 %v, L2 0.1 gave %v", norm2(h10.Weight), norm2(h.Weight))
	}
}

func norm2(v []float32) float64 {
	s := 0.0
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return s
}

func TestFitErrors(t *testing.T) {
	x := [][]float32{{1, 2}, {3, 4}}
	tests := []struct {
		name    string
		x       [][]float32
		y       []int
		classes int
		l2      float64
		want    string
	}{
		{"empty", nil, nil, 2, 0, "no training"},
		{"labels", x, []int{0}, 2, 0, "2 examples but 1 labels"},
		{"one class", x, []int{0, 0}, 1, 0, "at least 2"},
		{"label range", x, []int{0, 2}, 2, 0, "outside [0, 2)"},
		{"ragged", [][]float32{{1, 2}, {3}}, []int{0, 1}, 2, 0, "has 1 features"},
		{"l2", x, []int{0, 1}, 2, math.NaN(), "L2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Fit(tt.x, tt.y, tt.classes, Options{L2: tt.l2})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestStratifiedSplit(t *testing.T) {
	labels := []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 3}
	train, val, err := StratifiedSplit(labels, 0.2, 42)
	if err != nil {
		t.Fatal(err)
	}
	count := func(idx []int) map[int]int {
		m := map[int]int{}
		for _, i := range idx {
			m[labels[i]]++
		}
		return m
	}
	// 10 -> 2, 5 -> 1, 2 -> at least 1, 1 -> kept for training.
	if got, want := count(val), map[int]int{0: 2, 1: 1, 2: 1}; !mapsEqual(got, want) {
		t.Errorf("validation counts %v, want %v", got, want)
	}
	if got, want := count(train), map[int]int{0: 8, 1: 4, 2: 1, 3: 1}; !mapsEqual(got, want) {
		t.Errorf("training counts %v, want %v", got, want)
	}
	all := append(slices.Clone(train), val...)
	slices.Sort(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("train and validation do not partition the examples: %v %v", train, val)
		}
	}
	train2, val2, _ := StratifiedSplit(labels, 0.2, 42)
	if !slices.Equal(train, train2) || !slices.Equal(val, val2) {
		t.Error("the same seed gave another split")
	}
	differs := false
	for seed := uint64(1); seed < 10 && !differs; seed++ {
		_, v, _ := StratifiedSplit(labels, 0.2, seed)
		differs = !slices.Equal(v, val)
	}
	if !differs {
		t.Error("every seed gives the same split")
	}
	if _, _, err := StratifiedSplit(labels, 1, 1); err == nil {
		t.Error("no error for a fraction of 1")
	}
	if tr, v, _ := StratifiedSplit(labels, 0, 1); len(v) != 0 || len(tr) != len(labels) {
		t.Error("fraction 0 did not keep everything for training")
	}
}

func mapsEqual(a, b map[int]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestConfusion(t *testing.T) {
	m, err := Confusion([]int{0, 0, 1, 2, 2}, []int{0, 1, 1, 2, 0}, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int{{1, 1, 0}, {0, 1, 0}, {1, 0, 1}}
	for i := range want {
		if !slices.Equal(m[i], want[i]) {
			t.Fatalf("confusion %v, want %v", m, want)
		}
	}
	if acc := Accuracy(m); acc != 0.6 {
		t.Fatalf("accuracy %v, want 0.6", acc)
	}
	if _, err := Confusion([]int{0}, []int{3}, 3); err == nil {
		t.Fatal("no error for a prediction out of range")
	}
	if !math.IsNaN(Accuracy([][]int{{0}})) {
		t.Fatal("accuracy of nothing is not NaN")
	}
}
