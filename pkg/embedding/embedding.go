// Package embedding handles image embeddings, the pooled features a
// network computes before its classifier: unit-length normalisation,
// cosine nearest neighbours, writing them as .npy, JSON Lines or CSV, and
// a cache on disk keyed by image content and model.
package embedding

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Normalize returns v scaled to unit Euclidean length (norm computed in
// float64); a zero vector stays zero.
func Normalize(v []float32) []float32 {
	out := make([]float32, len(v))
	n := norm(v)
	if n == 0 {
		return out
	}
	for i, x := range v {
		out[i] = float32(float64(x) / n)
	}
	return out
}

func norm(v []float32) float64 {
	s := 0.0
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// Cosine is the cosine similarity of a and b, in [-1, 1]; 0 when either is
// zero. a and b must have the same length.
func Cosine(a, b []float32) float64 {
	na, nb := norm(a), norm(b)
	if na == 0 || nb == 0 {
		return 0
	}
	dot := 0.0
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
	}
	return dot / (na * nb)
}

// Match is one neighbour found by Nearest.
type Match struct {
	Index      int     // position in the searched items
	Similarity float64 // cosine similarity with the query
}

// Nearest returns the k items most similar to query by cosine similarity,
// most similar first; equal similarities keep the items' order. It fails
// when an item's length differs from the query's.
func Nearest(query []float32, items [][]float32, k int) ([]Match, error) {
	matches := make([]Match, len(items))
	for i, it := range items {
		if len(it) != len(query) {
			return nil, fmt.Errorf("embedding: item %d has %d values, the query %d", i, len(it), len(query))
		}
		matches[i] = Match{Index: i, Similarity: Cosine(query, it)}
	}
	slices.SortStableFunc(matches, func(a, b Match) int { return cmp.Compare(b.Similarity, a.Similarity) })
	return matches[:min(max(k, 0), len(matches))], nil
}
