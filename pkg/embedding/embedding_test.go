package embedding

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/res2net/res2net/internal/npy"
)

func TestNormalize(t *testing.T) {
	got := Normalize([]float32{3, 0, -4})
	want := []float32{0.6, 0, -0.8}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-7 {
			t.Fatalf("Normalize = %v, want %v", got, want)
		}
	}
	for _, v := range Normalize([]float32{0, 0}) {
		if v != 0 {
			t.Fatal("zero vector did not stay zero")
		}
	}
}

func TestNearest(t *testing.T) {
	items := [][]float32{
		{1, 0},  // 0: same direction as the query
		{0, 1},  // 1: orthogonal
		{-1, 0}, // 2: opposite
		{2, 2},  // 3: 45 degrees
		{5, 0},  // 4: same direction, longer: ties with 0
	}
	got, err := Nearest([]float32{3, 0}, items, 3)
	if err != nil {
		t.Fatal(err)
	}
	wantIdx := []int{0, 4, 3}
	wantSim := []float64{1, 1, math.Sqrt2 / 2}
	if len(got) != 3 {
		t.Fatalf("got %d matches, want 3", len(got))
	}
	for i := range got {
		if got[i].Index != wantIdx[i] || math.Abs(got[i].Similarity-wantSim[i]) > 1e-12 {
			t.Fatalf("Nearest = %+v, want indices %v with similarities %v", got, wantIdx, wantSim)
		}
	}
	if all, _ := Nearest([]float32{3, 0}, items, 99); len(all) != len(items) {
		t.Fatalf("k beyond the items gave %d matches", len(all))
	}
	if _, err := Nearest([]float32{1, 2, 3}, items, 1); err == nil {
		t.Fatal("no error for items of another length")
	}
}

func TestFormatOf(t *testing.T) {
	for name, want := range map[string]Format{"a.npy": NPY, "b.JSONL": JSONL, "c.json": JSONL, "d.csv": CSV} {
		if got, err := FormatOf(name); err != nil || got != want {
			t.Errorf("FormatOf(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := FormatOf("e.txt"); err == nil {
		t.Error("no error for .txt")
	}
}

func TestWriter(t *testing.T) {
	rows := map[string][]float32{"a.jpg": {0.5, -1.25, 3}, "b.png": {1, 2, 0.1}}
	order := []string{"a.jpg", "b.png"}
	write := func(t *testing.T, f Format) (string, string) {
		var out, names bytes.Buffer
		w, err := NewWriter(&out, f, &names)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range order {
			if err := w.Write(name, rows[name]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Write("c.gif", []float32{1}); err == nil {
			t.Fatal("no error for an embedding of another length")
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return out.String(), names.String()
	}
	t.Run("jsonl", func(t *testing.T) {
		out, _ := write(t, JSONL)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("%d lines, want 2:\n%s", len(lines), out)
		}
		var r struct {
			File      string
			Embedding []float32
		}
		if err := json.Unmarshal([]byte(lines[1]), &r); err != nil {
			t.Fatal(err)
		}
		if r.File != "b.png" || r.Embedding[2] != 0.1 {
			t.Fatalf("second line %s", lines[1])
		}
		if !strings.Contains(lines[1], "0.1]") {
			t.Errorf("float32 printed long: %s", lines[1])
		}
	})
	t.Run("csv", func(t *testing.T) {
		out, _ := write(t, CSV)
		want := "file,f0,f1,f2,error\na.jpg,0.5,-1.25,3,\nb.png,1,2,0.1,\n"
		if out != want {
			t.Fatalf("CSV\n%s\nwant\n%s", out, want)
		}
	})
	t.Run("npy", func(t *testing.T) {
		out, names := write(t, NPY)
		if names != "a.jpg\nb.png\n" {
			t.Fatalf("file list %q", names)
		}
		p := filepath.Join(t.TempDir(), "e.npy")
		if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		arr, err := npy.Read(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(arr.Shape) != 2 || arr.Shape[0] != 2 || arr.Shape[1] != 3 || arr.Data[3] != 1 || arr.Data[1] != -1.25 {
			t.Fatalf("array %v %v", arr.Shape, arr.Data)
		}
	})
}

// TestWriterErrors checks the records of images that could not be
// embedded, including CSV rows that come before the first embedding.
func TestWriterErrors(t *testing.T) {
	bad := errors.New("decode x.gif: unsupported image")
	var out bytes.Buffer
	w, _ := NewWriter(&out, CSV, nil)
	w.WriteError("x.gif", bad)
	w.Write("a.jpg", []float32{1, 2})
	w.WriteError("y.gif", bad)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "file,f0,f1,error\nx.gif,,,decode x.gif: unsupported image\na.jpg,1,2,\ny.gif,,,decode x.gif: unsupported image\n"
	if out.String() != want {
		t.Errorf("CSV\n%s\nwant\n%s", out.String(), want)
	}

	out.Reset()
	w, _ = NewWriter(&out, CSV, nil)
	w.WriteError("x.gif", bad)
	w.Close()
	if want := "file,error\nx.gif,decode x.gif: unsupported image\n"; out.String() != want {
		t.Errorf("CSV of failures only\n%s\nwant\n%s", out.String(), want)
	}

	out.Reset()
	w, _ = NewWriter(&out, JSONL, nil)
	w.WriteError("<stdin>", bad)
	w.Close()
	if want := `{"file":"<stdin>","error":"decode x.gif: unsupported image"}` + "\n"; out.String() != want {
		t.Errorf("JSONL %s, want %s", out.String(), want)
	}
}

func TestCache(t *testing.T) {
	root := t.TempDir()
	key, err := ModelKey(strings.NewReader("checkpoint bytes"), "resize 232 crop 224")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ModelKey(strings.NewReader("checkpoint bytes"), "resize 256 crop 224")
	if key == other {
		t.Fatal("the transform does not change the model key")
	}
	c, err := OpenCache(root, key)
	if err != nil {
		t.Fatal(err)
	}
	img := ContentKey([]byte("jpeg bytes"))
	if _, ok := c.Get(img, 3); ok {
		t.Fatal("hit in an empty cache")
	}
	v := []float32{1, -2, 3.5}
	if err := c.Put(img, v); err != nil {
		t.Fatal(err)
	}
	got, ok := c.Get(img, 3)
	if !ok || got[0] != 1 || got[1] != -2 || got[2] != 3.5 {
		t.Fatalf("Get = %v, %v; want %v", got, ok, v)
	}
	if _, ok := c.Get(img, 4); ok {
		t.Fatal("hit for an entry of another length")
	}
	// Another model's cache does not see the entry.
	c2, _ := OpenCache(root, other)
	if _, ok := c2.Get(img, 3); ok {
		t.Fatal("entry shared across models")
	}
	if _, err := OpenCache(root, "../escape"); err == nil {
		t.Fatal("no error for a model key with a path in it")
	}
}
