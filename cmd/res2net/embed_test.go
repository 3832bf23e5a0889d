package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/res2net/res2net/internal/npy"
)

// TestEmbedMatchesPyTorch checks the tiny checkpoint's embeddings against
// PyTorch's.
func TestEmbedMatchesPyTorch(t *testing.T) {
	checkEmbedParity(t, tinyWeights, beyondDir)
}

// checkEmbedParity writes the embeddings of beyondPhotos with weights as
// .npy and compares each row with PyTorch's pooled features in fixtures
// within 1e-4 relative, in input order, with the file list beside it.
func checkEmbedParity(t *testing.T, weights, fixtures string) {
	dir := t.TempDir()
	ios, _, errOut := testIO("")
	net := testNet()
	net.Model.Weights = weights
	opts := &embedOptions{IO: ios, Output: filepath.Join(dir, "f.npy"), Net: net}
	for _, p := range beyondPhotos {
		opts.Inputs = append(opts.Inputs, filepath.Join(photosDir, p.file))
	}
	if err := runEmbed(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	got, err := npy.Read(filepath.Join(dir, "f.npy"))
	if err != nil {
		t.Fatal(err)
	}
	list, err := os.ReadFile(filepath.Join(dir, "f.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(opts.Inputs, "\n") + "\n"; string(list) != want {
		t.Fatalf("file list\n%s\nwant\n%s", list, want)
	}
	if len(got.Shape) != 2 || got.Shape[0] != len(beyondPhotos) {
		t.Fatalf("array of shape %v for %d photos", got.Shape, len(beyondPhotos))
	}
	d := got.Shape[1]
	for i, p := range beyondPhotos {
		want, err := npy.Read(filepath.Join(fixtures, p.stem+".pooled.npy"))
		if err != nil {
			t.Fatal(err)
		}
		if len(want.Data) != d {
			t.Fatalf("%s: %d features, PyTorch %d", p.file, d, len(want.Data))
		}
		row := got.Data[i*d : (i+1)*d]
		tol := 1e-4 * maxAbsOf(want.Data)
		worst := 0.0
		for j, v := range want.Data {
			diff := math.Abs(float64(row[j] - v))
			if diff > tol {
				t.Fatalf("%s: feature %d = %v, PyTorch %v", p.file, j, row[j], v)
			}
			worst = math.Max(worst, diff)
		}
		t.Logf("%s: %d features, max |difference| %.3g (tolerance %.3g)", p.file, d, worst, tol)
	}
}

// TestEmbedFormats checks that JSON Lines and CSV carry the same rows, that
// --normalize gives unit length, and that standard input and a bad file
// work as in predict.
func TestEmbedFormats(t *testing.T) {
	coffee := filepath.Join(photosDir, "coffee.png")
	raw, err := os.ReadFile(coffee)
	if err != nil {
		t.Fatal(err)
	}
	ios, out, errOut := testIO(string(raw))
	opts := &embedOptions{IO: ios, Inputs: []string{coffee, "nope.png", "-"}, Normalize: true, Net: testNet()}
	err = runEmbed(context.Background(), opts)
	if err == nil || !strings.Contains(errOut.String(), "nope.png") {
		t.Fatalf("error %v, stderr %q: want nope.png reported", err, errOut)
	}
	var rows [][]float32
	var files []string
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct {
			File      string    `json:"file"`
			Embedding []float32 `json:"embedding"`
			Error     string    `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Error != "" {
			if r.File != "nope.png" || r.Embedding != nil {
				t.Fatalf("error record %s", sc.Bytes())
			}
			files = append(files, r.File)
			continue
		}
		files, rows = append(files, r.File), append(rows, r.Embedding)
	}
	if len(rows) != 2 || strings.Join(files, " ") != coffee+" nope.png "+stdinName {
		t.Fatalf("records for %v, want coffee, nope.png (an error) and %s", files, stdinName)
	}
	for i, v := range rows {
		n := 0.0
		for j, x := range v {
			n += float64(x) * float64(x)
			if x != rows[0][j] {
				t.Fatalf("row %d differs from row 0 (the same image) at %d", i, j)
			}
		}
		if math.Abs(math.Sqrt(n)-1) > 1e-6 {
			t.Fatalf("row %d has length %v with --normalize", i, math.Sqrt(n))
		}
	}

	ios, out, errOut = testIO("")
	opts = &embedOptions{IO: ios, Inputs: []string{coffee}, Normalize: true, Format: "csv", Net: testNet()}
	if err := runEmbed(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	recs, err := csv.NewReader(out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0][0] != "file" || recs[0][1+len(rows[0])] != "error" || recs[1][0] != coffee || len(recs[1]) != 2+len(rows[0]) {
		t.Fatalf("CSV has %d rows: header %v", len(recs), recs[0][:2])
	}
	for j, s := range recs[1][1 : 1+len(rows[0])] {
		v, err := strconv.ParseFloat(s, 32)
		if err != nil || float32(v) != rows[0][j] {
			t.Fatalf("CSV value %d = %q, JSON %v", j, s, rows[0][j])
		}
	}
}

// TestEmbedSimilar finds the images most like a query: re-encodings of the
// same picture first, the query itself left out.
func TestEmbedSimilar(t *testing.T) {
	ios, out, errOut := testIO("")
	query := filepath.Join(photosDir, "astronaut.jpg")
	opts := &embedOptions{IO: ios, Inputs: []string{photosDir}, Similar: query, TopK: 3, Format: "json", Net: testNet()}
	if err := runEmbed(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var got []neighbour
	dec := json.NewDecoder(out)
	for dec.More() {
		var n neighbour
		if err := dec.Decode(&n); err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if len(got) != 3 {
		t.Fatalf("%d neighbours, want 3", len(got))
	}
	// Both decode to the query's pixels (EXIF orientation off).
	for _, n := range got[:2] {
		if b := filepath.Base(n.File); (b != "astronaut.progressive.jpg" && b != "astronaut.exif6.jpg") || n.Similarity < 0.999 {
			t.Errorf("nearest %+v, want the query's re-encodings first", got[:2])
		}
	}
	for i, n := range got {
		if n.File == query {
			t.Errorf("the query is among its own neighbours")
		}
		if n.Rank != i+1 || (i > 0 && n.Similarity > got[i-1].Similarity) {
			t.Errorf("neighbours out of order: %+v", got)
		}
	}
}
