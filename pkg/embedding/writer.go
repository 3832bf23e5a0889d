package embedding

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/res2net/res2net/internal/npy"
)

// Format is a file format for embeddings.
type Format string

// The formats Writer writes.
const (
	// NPY is a NumPy N x D float32 array; the file names go to a separate
	// list, one per line, in row order.
	NPY Format = "npy"
	// JSONL is one {"file": ..., "embedding": [...]} object per line.
	JSONL Format = "jsonl"
	// CSV is a header "file,f0,f1,..." then one row per image.
	CSV Format = "csv"
)

// FormatOf picks the format from a file name's extension (.npy, .jsonl or
// .json, .csv; case-insensitive).
func FormatOf(name string) (Format, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".npy":
		return NPY, nil
	case ".jsonl", ".json":
		return JSONL, nil
	case ".csv":
		return CSV, nil
	}
	return "", fmt.Errorf("%s: unknown embedding format (use .npy, .jsonl or .csv)", name)
}

// Writer writes one embedding per image in a Format. JSONL and CSV rows
// are written as they come; NPY needs the row count in its header, so its
// rows are kept until Close.
type Writer struct {
	w      io.Writer
	names  io.Writer // NPY only: the file list
	format Format
	dim    int // values per embedding, from the first
	enc    *json.Encoder
	csv    *csv.Writer
	files  []string
	rows   []float32
}

// NewWriter returns a Writer of format to w. For NPY, names receives the
// file names, one per line, when the Writer is closed; for the other
// formats it is ignored.
func NewWriter(w io.Writer, format Format, names io.Writer) (*Writer, error) {
	ew := &Writer{w: w, names: names, format: format}
	switch format {
	case JSONL:
		ew.enc = json.NewEncoder(w)
		ew.enc.SetEscapeHTML(false) // file names as they are: <stdin>, a&b.jpg
	case CSV:
		ew.csv = csv.NewWriter(w)
	case NPY:
		if names == nil {
			return nil, fmt.Errorf("embedding: .npy output needs a writer for the file list")
		}
	default:
		return nil, fmt.Errorf("embedding: unknown format %q", format)
	}
	return ew, nil
}

// record is one JSON Lines row.
type record struct {
	File      string    `json:"file"`
	Embedding []float32 `json:"embedding"` // float32: JSON prints it short
}

// Write adds the embedding of one image. Every embedding must have the
// length of the first.
func (ew *Writer) Write(file string, v []float32) error {
	if ew.dim == 0 {
		if len(v) == 0 {
			return fmt.Errorf("embedding: %s: empty embedding", file)
		}
		ew.dim = len(v)
		if ew.csv != nil {
			header := make([]string, 1+len(v))
			header[0] = "file"
			for i := range v {
				header[1+i] = "f" + strconv.Itoa(i)
			}
			ew.csv.Write(header)
		}
	}
	if len(v) != ew.dim {
		return fmt.Errorf("embedding: %s: %d values, the first image had %d", file, len(v), ew.dim)
	}
	switch ew.format {
	case JSONL:
		return ew.enc.Encode(record{File: file, Embedding: v})
	case CSV:
		row := make([]string, 1+len(v))
		row[0] = file
		for i, x := range v {
			row[1+i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
		}
		ew.csv.Write(row)
		ew.csv.Flush()
		return ew.csv.Error()
	}
	if strings.ContainsAny(file, "\n\r") {
		return fmt.Errorf("embedding: file name %q cannot go in a one-per-line list", file)
	}
	ew.files = append(ew.files, file)
	ew.rows = append(ew.rows, v...)
	return nil
}

// Close finishes the output: for NPY it writes the array (N x D, 0 x 0
// when empty) and the file list.
func (ew *Writer) Close() error {
	if ew.format != NPY {
		if ew.csv != nil {
			ew.csv.Flush()
			return ew.csv.Error()
		}
		return nil
	}
	if err := npy.Write(ew.w, ew.rows, len(ew.files), ew.dim); err != nil {
		return err
	}
	var b strings.Builder
	for _, f := range ew.files {
		b.WriteString(f)
		b.WriteByte('\n')
	}
	_, err := io.WriteString(ew.names, b.String())
	return err
}
