package classify

import (
	"math"
	"strconv"
)

// Prediction is one class of one image's result.
type Prediction struct {
	Rank        int    `json:"rank"`
	Index       int    `json:"index"`
	Label       string `json:"label"`
	Probability Score  `json:"probability"`
	Logit       Score  `json:"logit"`
}

// Record is the outcome for one input: its predictions, or the error that
// kept it from being classified. It is the JSON object `predict --format
// json` prints per input and the serve endpoints return per image.
type Record struct {
	File        string       `json:"file"`
	Predictions []Prediction `json:"predictions,omitempty"`
	Error       string       `json:"error,omitempty"`
}

// Failed returns the record of an input that could not be classified.
func Failed(file string, err error) Record {
	return Record{File: file, Error: err.Error()}
}

// Finite reports whether every score of r is a number (not NaN or ±Inf).
func (r Record) Finite() bool {
	for _, p := range r.Predictions {
		if !p.Probability.Finite() || !p.Logit.Finite() {
			return false
		}
	}
	return true
}

// Score is a probability or logit as the network computed it, in float32.
// It marshals to JSON in float32's shortest form, and as null when it is
// NaN or infinite, which JSON cannot represent.
type Score float32

// Finite reports whether s is a number.
func (s Score) Finite() bool {
	f := float64(s)
	return !math.IsNaN(f) && !math.IsInf(f, 0)
}

// String formats s in float32's shortest form ("NaN", "+Inf" as strconv
// writes them), as CSV output shows it.
func (s Score) String() string {
	return strconv.FormatFloat(float64(s), 'g', -1, 32)
}

// MarshalJSON writes s as encoding/json writes a float32, or null.
func (s Score) MarshalJSON() ([]byte, error) {
	if !s.Finite() {
		return []byte("null"), nil
	}
	f := float64(s)
	// encoding/json's choice: exponent form only for very small or large
	// magnitudes, with a short exponent (1e-7, not 1e-07).
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b := strconv.AppendFloat(nil, f, format, -1, 32)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// UnmarshalJSON reads a number, or null as NaN.
func (s *Score) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = Score(math.NaN())
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 32)
	if err != nil {
		return err
	}
	*s = Score(f)
	return nil
}
