package headfit

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// StratifiedSplit splits example indices 0..len(labels)-1 into training
// and validation sets, taking round(frac * n) of each class's n examples
// for validation, chosen at random with seed: the same labels, frac and
// seed always give the same split. A class with at least two examples
// keeps at least one on each side when frac > 0; a class with one example
// keeps it for training. Both results are in increasing order.
func StratifiedSplit(labels []int, frac float64, seed uint64) (train, val []int, err error) {
	if !(frac >= 0 && frac < 1) {
		return nil, nil, fmt.Errorf("headfit: validation fraction %v outside [0, 1)", frac)
	}
	byClass := map[int][]int{}
	var classes []int
	for i, c := range labels {
		if _, ok := byClass[c]; !ok {
			classes = append(classes, c)
		}
		byClass[c] = append(byClass[c], i)
	}
	slices.Sort(classes)
	for _, c := range classes {
		idx := byClass[c]
		// One stream per class, so that a class's split does not depend
		// on the sizes of the others.
		rng := rand.New(rand.NewPCG(seed, uint64(c)))
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		nv := int(math.Round(frac * float64(len(idx))))
		if frac > 0 && len(idx) >= 2 {
			nv = min(max(nv, 1), len(idx)-1)
		} else {
			nv = min(nv, len(idx)-1)
		}
		val = append(val, idx[:nv]...)
		train = append(train, idx[nv:]...)
	}
	slices.Sort(train)
	slices.Sort(val)
	return train, val, nil
}

// Confusion counts predictions: m[t][p] is the number of examples of true
// class t predicted as p. Labels outside [0, classes) are an error.
func Confusion(truth, pred []int, classes int) ([][]int, error) {
	if len(truth) != len(pred) {
		return nil, fmt.Errorf("headfit: %d true labels but %d predictions", len(truth), len(pred))
	}
	m := make([][]int, classes)
	for i := range m {
		m[i] = make([]int, classes)
	}
	for i, t := range truth {
		p := pred[i]
		if t < 0 || t >= classes || p < 0 || p >= classes {
			return nil, fmt.Errorf("headfit: label %d or prediction %d outside [0, %d)", t, p, classes)
		}
		m[t][p]++
	}
	return m, nil
}

// Accuracy is the fraction of the confusion matrix on its diagonal (NaN
// when it is empty).
func Accuracy(m [][]int) float64 {
	right, all := 0, 0
	for t, row := range m {
		for p, n := range row {
			all += n
			if t == p {
				right += n
			}
		}
	}
	if all == 0 {
		return math.NaN()
	}
	return float64(right) / float64(all)
}
